"""The denoising trajectory (paper Fig. 7): how good is one denoising step at each noise level?

Encode an input x -> z0, corrupt z_t = t*z0 + (1-t)*eps (t = 1 clean, t = 0 noise), take the
denoiser's one-step x-prediction z0_hat = GE(z_t, t, y) and decode it. For images the PSNR
of the decoded prediction to the input measures how clean the intermediate trajectory is
(the paper's stop-gradient models keep it higher at every level); the direct decode of z0
(no noise) is the reference column. Atom models have no pixels: they report the latent MSE
||z0_hat - z0||^2 (mean per element), which images report too.
"""

from __future__ import annotations

import torch

from unite.metrics.psnr import psnr_tensor
from unite.modality import batch_size_of, is_image, to_device


@torch.no_grad()
def denoising_trajectory(
    model,
    cfg,
    batches,
    ts: list[float],
    *,
    seed: int = 0,
    keep: int = 8,
    device: str | torch.device = "cpu",
    progress=None,
) -> dict:
    """Mean PSNR (images) and latent MSE of the one-step prediction at each t.

    Returns ``{"t", "num_inputs", "latent_mse": {t: v}, "psnr": {t: v}, "psnr_clean": v,
    "strip": {"inputs", "clean", t: images}}`` (PSNR and strip for images only; the strip
    holds the first ``keep`` inputs).
    """
    images = is_image(cfg)
    torch.manual_seed(seed)  # tokenize() draws its t ~ U[0, 0.01) from the global RNG
    gen = torch.Generator().manual_seed(seed)
    k_reg, c_lat = model.latent_shape
    keys = [f"{t:g}" for t in ts]
    mse_sum = dict.fromkeys(keys, 0.0)
    psnr_sum = dict.fromkeys(keys, 0.0)
    clean_sum = 0.0
    strip: dict[str, list[torch.Tensor]] = {"inputs": [], "clean": [], **{k: [] for k in keys}}
    n = 0
    for x, y in batches:
        x, y = to_device(x, device), y.to(device)
        b = batch_size_of(x)
        noise = torch.randn(b, k_reg, c_lat, generator=gen).to(device)
        z0 = model.encode(x, noise=noise)
        take = max(0, keep - n)
        if images:
            clean = model.decode(z0)
            clean_sum += psnr_tensor(clean, x).sum().item()
            strip["inputs"].append(x[:take].cpu())
            strip["clean"].append(clean[:take].cpu())
        for t, key in zip(ts, keys):
            eps = torch.randn(b, k_reg, c_lat, generator=gen).to(device)
            z_t = t * z0 + (1.0 - t) * eps
            z_hat = model.denoise(z_t, torch.full((b,), t, device=device), y)
            mse_sum[key] += (z_hat - z0).pow(2).flatten(1).mean(1).sum().item()
            if images:
                decoded = model.decode(z_hat)
                psnr_sum[key] += psnr_tensor(decoded, x).sum().item()
                strip[key].append(decoded[:take].cpu())
        n += b
        if progress is not None:
            progress.update(b)
    if not n:
        raise ValueError("no inputs to analyse")
    out = {"t": list(ts), "num_inputs": n, "latent_mse": {k: v / n for k, v in mse_sum.items()}}
    if images:
        out["psnr"] = {k: v / n for k, v in psnr_sum.items()}
        out["psnr_clean"] = clean_sum / n
        out["strip"] = {k: torch.cat(v) for k, v in strip.items()}
    return out


def plot_strip(result: dict, title: str, png) -> None:
    """Rows = inputs; columns = input, decoded x-prediction at each t, direct decode of z0."""
    from unite.analysis import pyplot, save_figure

    plt = pyplot()
    strip = result["strip"]
    keys = [f"{t:g}" for t in result["t"]]
    cols = [("inputs", "input")]
    cols += [(k, f"t = {k}\n{result['psnr'][k]:.1f} dB") for k in keys]
    cols += [("clean", f"decode(z0)\n{result['psnr_clean']:.1f} dB")]
    rows = strip["inputs"].shape[0]
    fig, axes = plt.subplots(rows, len(cols), figsize=(1.6 * len(cols), 1.6 * rows + 0.8),
                             squeeze=False)
    for j, (key, label) in enumerate(cols):
        for i in range(rows):
            ax = axes[i][j]
            img = ((strip[key][i].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=9)
    fig.suptitle(f"{title}\none-step x-prediction decoded at noise level t "
                 f"(1 = clean); mean PSNR to the input", fontsize=10)
    fig.tight_layout()
    save_figure(fig, png)

