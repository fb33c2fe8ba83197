"""Datasets by kind (the table of kinds: ``unite.kinds``). Every dataset yields ``(x, y)``: x an
image tensor in [-1, 1] (3, H, W) or a dict of atom tensors, y a class index (0 for
unconditional data)."""

from __future__ import annotations

import importlib

from torch.utils.data import Dataset

from unite import kinds
from unite.config import Config
from unite.errors import UserError

SPLITS = ("train", "val", "test")


def build_dataset(cfg: Config, split: str) -> Dataset:
    """``split`` of the dataset ``data.kind`` names: the class of its row of
    ``unite.kinds.DATA_KINDS``, imported on first use."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    row = kinds.get(cfg.data.kind)
    return getattr(importlib.import_module(row.module), row.dataset)(cfg, split)


def train_and_val(cfg: Config) -> tuple[Dataset, Dataset | None]:
    """The train split and the val split, or None for a dataset without one (no held-out
    eval)."""
    train_set = build_dataset(cfg, "train")
    try:
        val_set = build_dataset(cfg, "val")
    except UserError:
        val_set = None
    return train_set, val_set
