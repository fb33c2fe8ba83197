"""Analyses of the paper's Section 4 (REFERENCE section 7): tokenization/denoising alignment,
weight entropy, the denoising trajectory and training curves.

Every analysis writes one JSON record in the shape all metric files share (``experiment``,
``kind``, ``metrics``, ``scale``, ``flags``; :func:`unite.artifacts.result` and
``write_result``) plus an optional PNG figure. The helpers here say what an analysis' scale
holds; torch and matplotlib are imported lazily so that building the
CLI parser stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from unite.atomic import atomic_write
from unite.errors import UserError


def scale_of(cfg, meta: dict, **extra) -> dict:
    """What a reader needs to judge a number: dataset, model size, train step, ..."""
    m = cfg.model
    return {
        "dataset": cfg.data.kind,
        "model_size": m.size,
        "decoder_size": m.decoder_size,
        "weight_sharing": bool(m.weight_sharing),
        "stop_gradient": bool(cfg.train.stop_gradient),
        "train_steps": int(meta.get("step", 0)),
        "fine_tuned": bool(meta.get("fine_tuned", False)),
        **extra,
    }


def save_figure(fig, path: str | Path) -> None:
    """Save a matplotlib figure as PNG and free it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def pyplot():
    """matplotlib with a non-interactive backend (jobs run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_times(ts: list[float]) -> list[float]:
    """Noise levels must lie in [0, 1] (t = 1 clean, t = 0 pure noise); duplicates dropped."""
    for t in ts:
        if not 0.0 <= t <= 1.0:
            raise UserError(f"--t values must lie in [0, 1] (1 = clean, 0 = noise), got {t}")
    return sorted({float(t) for t in ts})


def validation_batches(cfg, split: str, limit: int, batch_size: int):
    """Yield (x, y) batches of the first ``limit`` items of a split, in a fixed order."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from unite.data import build_dataset

    if limit <= 0:
        raise UserError(f"--limit must be > 0, got {limit}")
    try:
        dataset = build_dataset(cfg, split)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"cannot open the {split!r} split of {cfg.data.kind!r}: {exc}") from None
    n = min(limit, len(dataset))
    if n == 0:
        raise UserError(f"the {split!r} split of {cfg.data.kind!r} is empty")
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, shuffle=False)
    with torch.no_grad():
        yield from loader
