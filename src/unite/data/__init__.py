"""Datasets by kind. Every dataset yields ``(x, y)``: x an image tensor in [-1, 1] (3, H, W)
or a dict of atom tensors, y a class index (0 for unconditional data)."""

from __future__ import annotations

from torch.utils.data import Dataset

from unite.config import Config
from unite.errors import UserError

SPLITS = ("train", "val", "test")


def build_dataset(cfg: Config, split: str) -> Dataset:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    kind = cfg.data.kind
    if kind == "digits":
        from unite.data.digits import DigitsDataset

        return DigitsDataset(cfg, split)
    if kind == "imagefolder":
        from unite.data.images import ImageFolderDataset

        return ImageFolderDataset(cfg, split)
    if kind == "qm9":
        from unite.data.qm9 import QM9Dataset

        return QM9Dataset(cfg, split)
    if kind == "crystals":
        from unite.data.crystals import CrystalDataset

        return CrystalDataset(cfg, split)
    raise ValueError(f"unknown data kind {kind!r}")


def train_and_val(cfg: Config) -> tuple[Dataset, Dataset | None]:
    """The train split and the val split, or None for a dataset without one (no held-out
    eval)."""
    train_set = build_dataset(cfg, "train")
    try:
        val_set = build_dataset(cfg, "val")
    except UserError:
        val_set = None
    return train_set, val_set
