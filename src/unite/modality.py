"""What differs between images and atoms, in one place: the reconstruction loss and how decoder
output becomes the arrays written to a sample file. Training, sampling and reconstruction
call these and stay modality-agnostic."""

from __future__ import annotations

import numpy as np
import torch

from unite import kinds
from unite.config import Config


def is_image(cfg: Config) -> bool:
    return kinds.is_images(cfg.data.kind)


def is_atoms(cfg: Config) -> bool:
    return kinds.is_atoms(cfg.data.kind)


def to_device(x, device):
    if isinstance(x, dict):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    return x.to(device, non_blocking=True)


def batch_size_of(x) -> int:
    return next(iter(x.values())).shape[0] if isinstance(x, dict) else x.shape[0]


def round_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 in the same layout: clamp, (x + 1) * 127.5, round half to
    even. The one rule by which images become pixels (sample, reconstruction and reference
    files, the metrics' dataset splits)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def images_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return round_to_uint8(x).permute(0, 2, 3, 1).cpu().numpy()


def decoded_to_arrays(cfg: Config, decoded) -> dict[str, np.ndarray]:
    """Decoder output -> the sample-file fields (images, or atom arrays of the issue's formats)."""
    if is_image(cfg):
        return {"images": images_to_uint8(decoded)}
    from unite.models.atoms import to_sample_arrays

    return to_sample_arrays(cfg, decoded)


def batch_to_arrays(cfg: Config, x) -> dict[str, np.ndarray]:
    """A data batch (ground truth) -> the same sample-file fields, for reference files."""
    if is_image(cfg):
        return {"images": images_to_uint8(x)}
    from unite.models.atoms import batch_to_sample_arrays

    return batch_to_sample_arrays(cfg, x)
