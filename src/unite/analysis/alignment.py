"""Tokenization-vs-denoising representation alignment (paper Fig. 6).

For the same input: encode x -> z0 recording the register activations of every GE block
(tokenization pass), corrupt z_t = t*z0 + (1-t)*eps, denoise recording the same activations
(denoising pass, ``model.denoiser``: the same network when weights are shared, the second one
in the separate ablation), then compare the two passes block by block, treating every
register of every input as one row.

Measures:
- linear CKA (Kornblith et al. 2019): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) on
  column-centred rows. Computed from streamed first and second moments, so memory does not
  grow with the number of inputs.
- CKNNA (Huh et al. 2024): CKA's alignment sum restricted to pairs (i, j) that are mutual
  k-nearest neighbours in both spaces; and mutual k-NN overlap. Both need an n x n kernel,
  so they use a seeded subset of rows (``knn_rows``). Neighbours are Euclidean, kernel
  values the double-centred linear kernel.
- mean cosine similarity between matching rows (same input, same register).
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


# -- the similarity measures --------------------------------------------------------------
class CKAStats:
    """Streamed moments of paired rows (X_i, Y_i) -> linear CKA and mean row cosine."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.syy = self.syx = None
        self.cos_sum = 0.0

    def update(self, x: Tensor, y: Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).double()
        y = y.reshape(-1, y.shape[-1]).double()
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"row counts differ: {x.shape[0]} vs {y.shape[0]}")
        if self.sx is None:
            self.sx, self.sy = x.new_zeros(x.shape[1]), y.new_zeros(y.shape[1])
            self.sxx = x.new_zeros(x.shape[1], x.shape[1])
            self.syy = y.new_zeros(y.shape[1], y.shape[1])
            self.syx = x.new_zeros(y.shape[1], x.shape[1])
        self.n += x.shape[0]
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.sxx += x.T @ x
        self.syy += y.T @ y
        self.syx += y.T @ x
        if x.shape[1] == y.shape[1]:
            self.cos_sum += torch.nn.functional.cosine_similarity(x, y, dim=1, eps=1e-12).sum().item()
        else:
            self.cos_sum = math.nan

    def cka(self) -> float:
        n = self.n
        if n < 2:
            return math.nan
        mx, my = self.sx / n, self.sy / n
        cxx = self.sxx - n * torch.outer(mx, mx)
        cyy = self.syy - n * torch.outer(my, my)
        cyx = self.syx - n * torch.outer(my, mx)
        denom = torch.linalg.matrix_norm(cxx) * torch.linalg.matrix_norm(cyy)
        if denom <= 0:
            return math.nan  # a constant representation has no geometry to compare
        return float(torch.linalg.matrix_norm(cyx) ** 2 / denom)

    def cosine(self) -> float:
        return self.cos_sum / self.n if self.n else math.nan


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between two representations of the same n rows, (n, d1) and (n, d2)."""
    stats = CKAStats()
    stats.update(x, y)
    return stats.cka()


def _knn_mask(x: Tensor, k: int) -> Tensor:
    """(n, n) bool: j is among the k Euclidean nearest neighbours of i (i itself excluded)."""
    d = torch.cdist(x, x)
    d.fill_diagonal_(math.inf)
    idx = d.topk(k, dim=1, largest=False).indices
    return torch.zeros_like(d, dtype=torch.bool).scatter_(1, idx, True)


def _centred_kernel(x: Tensor) -> Tensor:
    x = x - x.mean(0, keepdim=True)  # column centring = double-centring the linear kernel
    return x @ x.T


def _check_k(n: int, k: int) -> None:
    if not 1 <= k < n:
        raise ValueError(f"k must lie in [1, n-1] for n = {n} rows, got {k}")


def cknna(x: Tensor, y: Tensor, k: int = 10) -> float:
    """Centred kernel nearest-neighbour alignment of paired rows (n, d1), (n, d2)."""
    x, y = x.reshape(-1, x.shape[-1]).double(), y.reshape(-1, y.shape[-1]).double()
    _check_k(x.shape[0], k)
    kx, ky = _centred_kernel(x), _centred_kernel(y)
    nx, ny = _knn_mask(x, k), _knn_mask(y, k)

    def align(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
        return (a * b * mask).sum()

    denom = torch.sqrt(align(kx, kx, nx) * align(ky, ky, ny))
    if denom <= 0:
        return math.nan
    return float(align(kx, ky, nx & ny) / denom)


def mutual_knn(x: Tensor, y: Tensor, k: int = 10) -> float:
    """Mean fraction of each row's k nearest neighbours shared by both representations."""
    x, y = x.reshape(-1, x.shape[-1]).double(), y.reshape(-1, y.shape[-1]).double()
    _check_k(x.shape[0], k)
    return float((_knn_mask(x, k) & _knn_mask(y, k)).sum(1).double().mean() / k)


# -- collecting activations of the two passes ----------------------------------------------
def _row_subset(h: Tensor, idx: Tensor) -> Tensor:
    """(B, K, D) -> (B * r, D): the registers ``idx`` (B, r) of every input."""
    return torch.gather(h, 1, idx[..., None].expand(-1, -1, h.shape[-1])).reshape(-1, h.shape[-1])


@torch.no_grad()
def tokenization_denoising_alignment(
    model,
    batches,
    ts: list[float],
    *,
    seed: int = 0,
    knn_rows: int = 1024,
    knn_k: int = 10,
    rows_per_input: int = 4,
    device: str | torch.device = "cpu",
    progress=None,
) -> dict:
    """Per-layer CKA / CKNNA / mutual k-NN / cosine between the two passes at each t.

    ``batches`` yields (x, y); returns ``{"layers", "t", "num_inputs", "num_rows", "cka",
    "cknna", "mutual_knn", "cosine"}`` with one list per t (keyed by ``f"{t:g}"``) over
    layers ``block1..blockL`` and ``latent`` (tokenizer z0 vs denoiser x-prediction).
    """
    from unite.modality import batch_size_of, to_device

    torch.manual_seed(seed)  # tokenize() draws its t ~ U[0, 0.01) from the global RNG
    gen = torch.Generator(device="cpu").manual_seed(seed)
    k_reg, c_lat = model.latent_shape
    stats: dict[str, list[CKAStats]] = {}
    subsets: dict[str, list[tuple[list[Tensor], list[Tensor]]]] = {}
    layers: list[str] = []
    num_inputs = 0
    for x, y in batches:
        x, y = to_device(x, device), y.to(device)
        b = batch_size_of(x)
        noise = torch.randn(b, k_reg, c_lat, generator=gen).to(device)
        z0, hid_tok = model.encoder.tokenize(x, noise=noise, return_hidden=True)
        tok = [*hid_tok, z0]
        if not layers:
            layers = [f"block{i + 1}" for i in range(len(hid_tok))] + ["latent"]
        r = min(rows_per_input, k_reg)
        idx = torch.rand(b, k_reg, generator=gen).argsort(1)[:, :r].to(device)
        for t in ts:
            key = f"{t:g}"
            eps = torch.randn(b, k_reg, c_lat, generator=gen).to(device)
            z_t = t * z0 + (1.0 - t) * eps
            tt = torch.full((b,), t, device=device)
            z_hat, hid_den = model.denoise(z_t, tt, y, return_hidden=True)
            den = [*hid_den, z_hat]
            if len(den) != len(tok):
                raise ValueError("encoder and denoiser have different depths")
            layer_stats = stats.setdefault(key, [CKAStats() for _ in layers])
            layer_rows = subsets.setdefault(key, [([], []) for _ in layers])
            for s, rows, a, d in zip(layer_stats, layer_rows, tok, den):
                s.update(a.float().cpu(), d.float().cpu())
                rows[0].append(_row_subset(a, idx).float().cpu())
                rows[1].append(_row_subset(d, idx).float().cpu())
        num_inputs += b
        if progress is not None:
            progress.update(b)
    if not num_inputs:
        raise ValueError("no inputs to analyse")

    out = {"layers": layers, "t": list(ts), "num_inputs": num_inputs, "cka": {}, "cknna": {},
           "mutual_knn": {}, "cosine": {}}
    pick = torch.Generator().manual_seed(seed + 1)
    for key, layer_stats in stats.items():
        out["cka"][key] = [s.cka() for s in layer_stats]
        out["cosine"][key] = [s.cosine() for s in layer_stats]
        out["num_rows"] = layer_stats[0].n
        ck, mk = [], []
        for xs, ys in subsets[key]:
            xa, ya = torch.cat(xs), torch.cat(ys)
            n = xa.shape[0]
            keep = torch.randperm(n, generator=pick)[: min(knn_rows, n)]
            k = min(knn_k, len(keep) - 1)
            ok = k >= 1
            ck.append(cknna(xa[keep], ya[keep], k) if ok else math.nan)
            mk.append(mutual_knn(xa[keep], ya[keep], k) if ok else math.nan)
        out["cknna"][key], out["mutual_knn"][key] = ck, mk
    out["knn"] = {"rows": min(knn_rows, num_inputs * min(rows_per_input, k_reg)), "k": knn_k}
    return out


def summarize(result: dict) -> dict:
    """Headline numbers per t: mean block CKA, last-block CKA, latent CKA and cosine."""
    summary = {}
    for key in result["cka"]:
        cka, cos = result["cka"][key], result["cosine"][key]
        blocks = [v for v in cka[:-1] if not math.isnan(v)]
        summary[key] = {
            "cka_mean_blocks": sum(blocks) / len(blocks) if blocks else math.nan,
            "cka_last_block": cka[-2] if len(cka) > 1 else math.nan,
            "cka_latent": cka[-1],
            "cknna_last_block": result["cknna"][key][-2] if len(cka) > 1 else math.nan,
            "cosine_last_block": cos[-2] if len(cos) > 1 else math.nan,
            "cosine_latent": cos[-1],
        }
    return summary


def plot_alignment(result: dict, title: str, png) -> None:
    """Per-layer curves (one line per t) for CKA, CKNNA and cosine; latent cosine vs t."""
    from unite.analysis import pyplot, save_figure

    plt = pyplot()
    layers = result["layers"]
    xs = list(range(1, len(layers) + 1))
    panels = [("cka", "linear CKA"), ("cknna", "CKNNA"), ("cosine", "cosine similarity")]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    axes = axes.flatten()
    for ax, (key, label) in zip(axes, panels):
        for t_key, values in result[key].items():
            ax.plot(xs, values, marker="o", label=f"t = {t_key}")
        ax.set_xticks(xs, layers, rotation=45, ha="right")
        ax.set_xlabel("layer (register tokens)")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: tokenization vs denoising")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8),
               title="denoising-pass noise level (t = 1 clean, t = 0 noise)")
    ax = axes[3]
    t_keys = list(result["cosine"])
    ax.plot([float(k) for k in t_keys], [result["cosine"][k][-1] for k in t_keys], marker="s",
            label="cosine (latent z0 vs x-prediction)")
    ax.plot([float(k) for k in t_keys], [result["cka"][k][-1] for k in t_keys], marker="o",
            label="CKA (latent)")
    ax.set_xlabel("t (0 = noise, 1 = clean)")
    ax.set_ylabel("similarity")
    ax.set_title("final latents vs noise level")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, png)
