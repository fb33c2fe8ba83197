"""PSNR, in one place: per-image PSNR of float images in [-1, 1] (training's eval, the
trajectory analysis) and of uint8 images (reconstruction files and their metrics)."""

from __future__ import annotations

import numpy as np
import torch


def psnr_tensor(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1], measured on the [0, 1] scale (peak 1);
    the MSE is floored at 1e-10, so identical images give 100 dB."""
    p = (pred.float().clamp(-1, 1) + 1) / 2
    q = (target.float().clamp(-1, 1) + 1) / 2
    mse = (p - q).pow(2).flatten(1).mean(dim=1).clamp(min=1e-10)
    return -10.0 * torch.log10(mse)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of uint8 images (peak 255); identical images give inf."""
    err = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = err.reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def mean_psnr_uint8(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean per-image PSNR of uint8 images; pixel-identical pairs (infinite PSNR) are left out
    of the mean (None when all are identical)."""
    values = psnr_uint8(a, b)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
