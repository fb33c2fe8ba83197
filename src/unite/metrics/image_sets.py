"""Image sets as the image metrics see them: uint8 (3, H, W) tensors, the form torch-fidelity
expects. Sample files hold uint8 (N, H, W, 3) arrays; dataset splits hold floats in [-1, 1] and
become uint8 through :func:`unite.modality.round_to_uint8`, the one rounding rule that sample
and reconstruction files are written with.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from unite import kinds
from unite.errors import UserError
from unite.modality import round_to_uint8


class UInt8Images(Dataset):
    """(N, H, W, 3) uint8 array -> the (3, H, W) uint8 tensors torch-fidelity expects."""

    def __init__(self, images: np.ndarray):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise UserError(
                f"expected images as uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}"
            )
        if len(images) == 0:
            raise UserError("no images to evaluate")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.images[i])).permute(2, 0, 1)
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x.contiguous()



class SplitAsUInt8(Dataset):
    """A project dataset split, read lazily (ImageNet does not fit in memory) as uint8 CHW."""

    def __init__(self, dataset: Dataset, limit: int = 0):
        self.dataset = dataset
        self.n = min(limit, len(dataset)) if limit else len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        x, _ = self.dataset[i]
        return round_to_uint8(x)  # the rounding of sample files


def split_dataset(cfg, split: str) -> Dataset:
    """``build_dataset`` without training augmentation (flips): reference sets must be fixed."""
    import copy

    from unite.data import build_dataset
    from unite.modality import is_image

    if not is_image(cfg):
        raise UserError(f"image metrics need an image dataset, the config has data.kind={cfg.data.kind}")
    cfg = copy.deepcopy(cfg)
    cfg.data.hflip = False
    return build_dataset(cfg, split)


def describe_preprocess(cfg) -> str:
    """How the reference images were made from the dataset (recorded with the statistics)."""
    text = kinds.get(cfg.data.kind).reference_preprocess or "as the dataset loads them, no flip"
    return text.format(size=cfg.data.image_size)
