"""Weight entropy as a description-length (MDL) proxy (paper Sec. 4, "Entropy / Compression").

Bin rule (the paper does not state its own): each parameter tensor is histogrammed into
``bins`` equal-width bins spanning that tensor's [min, max] (default 256 bins). The Shannon
entropy H of the bin frequencies, in bits, is the cost per parameter; a tensor costs
H * numel bits, reported in MB (1e6 bytes). A constant tensor costs 0; i.i.d. uniform
values cost about log2(bins) bits per parameter. Because the bins follow each tensor's own
range the measure is invariant to a tensor's scale and offset: it sees only the shape of the
value distribution, which is what training changes. Absolute MB therefore depend on ``bins``
(the paper's totals, 179.2 MB for a 130.6M-parameter random encoder, imply about 11 bits per
parameter, i.e. roughly 2048 bins); comparisons at one bin rule are what the analysis is for.

Categories (the paper's split is "normalisation" vs "attention/MLP"):
- ``norm``: affine weights of RMSNorm/LayerNorm layers (incl. QK-norm, the final latent norm);
- ``adaln``: adaLN modulation (shift/scale/gate) linears; the paper's normalisation-related
  budget is only reachable if these count as normalisation, so ``normalization`` = norm + adaln;
- ``attention``: qkv and output projections; ``mlp``: the block MLPs;
- ``other``: embeddings (patch/atom, register, time, class), the final projection, decoder heads.
References: the model's own initialisation (``unite analyze entropy`` rebuilds it with the
same config; adaLN-Zero modulation, zero biases and unit norm scales are constant there and
cost 0 bits) and i.i.d. Gaussian values of the same shapes (weights with no structure).

Parameters are grouped by module: ``encoder`` (the GE; also the denoiser when shared),
``denoiser`` (separate ablation only) and ``decoder``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

CATEGORIES = ("norm", "adaln", "attention", "mlp", "other")
NORM_TYPES = (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d)


def histogram_entropy_bits(t: torch.Tensor, bins: int = 256) -> float:
    """Shannon entropy (bits per value) of a tensor's equal-width histogram over [min, max]."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    v = t.detach().reshape(-1).double()
    if v.numel() == 0:
        return 0.0
    lo, hi = v.min().item(), v.max().item()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("tensor holds NaN or inf values")
    if hi == lo:
        return 0.0
    counts = torch.histc(v, bins=bins, min=lo, max=hi)
    p = counts[counts > 0] / v.numel()
    return float(-(p * p.log2()).sum())


def categorize(model: nn.Module) -> dict[str, str]:
    """Parameter name -> category, decided by the module that owns the parameter."""
    owner: dict[str, str] = {}
    for mod_name, module in model.named_modules():
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            owner[full] = _category(mod_name, module)
    return owner


def _category(mod_name: str, module: nn.Module) -> str:
    parts = mod_name.split(".")
    if isinstance(module, NORM_TYPES) or "norm" in type(module).__name__.lower():
        return "norm"
    if any(p.lower().startswith("adaln") for p in parts):
        return "adaln"
    if "attn" in parts:
        return "attention"
    if "mlp" in parts and "blocks" in parts:
        return "mlp"
    return "other"


def _module_group(name: str) -> str:
    if name.startswith("separate_denoiser."):
        return "denoiser"
    if name.startswith("encoder."):
        return "encoder"
    if name.startswith("decoder."):
        return "decoder"
    return "other"


def weight_entropy(model: nn.Module, bins: int = 256, replace=None) -> dict:
    """Per-tensor entropies summed per module group and category.

    ``replace(p) -> tensor``, if given, substitutes each parameter's values (e.g. i.i.d.
    Gaussian values for a structure-free reference).

    Returns ``{"groups": {group: {category: {"mb", "params"}, "normalization", "attention_mlp",
    "total"}}, "tensors": [...]}``; ``normalization`` = norm + adaln, ``attention_mlp`` =
    attention + mlp.
    """
    cats = categorize(model)
    groups: dict[str, dict] = {}
    tensors = []
    for name, p in model.named_parameters():  # shared parameters appear once
        bits = histogram_entropy_bits(p if replace is None else replace(p), bins)
        mb = bits * p.numel() / 8 / 1e6
        group, cat = _module_group(name), cats[name]
        tensors.append({"name": name, "group": group, "category": cat, "numel": p.numel(),
                        "bits_per_param": bits, "mb": mb})
        g = groups.setdefault(group, {c: {"mb": 0.0, "params": 0} for c in CATEGORIES})
        g[cat]["mb"] += mb
        g[cat]["params"] += p.numel()
    for g in groups.values():
        g["normalization"] = _combine(g, ("norm", "adaln"))
        g["attention_mlp"] = _combine(g, ("attention", "mlp"))
        g["total"] = _combine(g, CATEGORIES)
    return {"groups": groups, "tensors": tensors}


def gaussian_reference(model: nn.Module, bins: int = 256, seed: int = 0) -> dict:
    """Every tensor replaced by i.i.d. N(0, 1) values of the same shape: weights with no
    structure at all (the bin rule is scale-free, so the variance does not matter)."""
    gen = torch.Generator().manual_seed(seed)
    return weight_entropy(model, bins, replace=lambda p: torch.randn(p.shape, generator=gen))


def _combine(g: dict, cats) -> dict:
    return {"mb": sum(g[c]["mb"] for c in cats), "params": sum(g[c]["params"] for c in cats)}


def plot_entropy(results: dict[str, dict], title: str, png) -> None:
    """Grouped bars (one per result, e.g. random init / Gaussian / trained), one column per
    module group: MB per category (top) and mean bits per parameter (bottom)."""
    from unite.analysis import pyplot, save_figure

    plt = pyplot()
    trained = list(results.values())[-1]
    groups = [g for g in ("encoder", "denoiser", "decoder") if g in trained["groups"]]
    cats = ("normalization", "attention_mlp", "other", "total")
    labels = ("normalisation\n(norm + adaLN)", "attention + MLP", "other", "total")
    rows = (("histogram entropy (MB)", lambda e: e["mb"]),
            ("bits per parameter", lambda e: e["mb"] * 8e6 / e["params"] if e["params"] else 0.0))
    fig, axes = plt.subplots(2, len(groups), figsize=(5.5 * len(groups), 7.5), squeeze=False)
    width = 0.8 / len(results)
    colours = ("tab:gray", "tab:olive", "tab:blue", "tab:orange", "tab:green")
    xs = list(range(len(cats)))
    for col, group in enumerate(groups):
        for row, (ylabel, value) in enumerate(rows):
            ax = axes[row][col]
            for i, ((name, res), colour) in enumerate(zip(results.items(), colours)):
                offset = (i - (len(results) - 1) / 2) * width
                vals = [value(res["groups"][group][c]) for c in cats]
                bars = ax.bar([x + offset for x in xs], vals, width, label=name, color=colour)
                ax.bar_label(bars, fmt="%.3g", fontsize=6)
            ax.set_xticks(xs, labels, fontsize=8)
            ax.set_ylabel(ylabel)
            params = trained["groups"][group]["total"]["params"]
            ax.set_title(f"{group} ({params:,} params): {ylabel}", fontsize=10)
            ax.set_ylim(top=ax.get_ylim()[1] * 1.25)  # headroom for the legend
            ax.legend(fontsize=8, ncol=len(results), loc="upper left")
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, png)
