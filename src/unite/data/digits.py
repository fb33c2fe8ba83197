"""The scikit-learn digits set (1,797 real 8x8 scans, grey levels 0..16, 10 classes) as a small,
offline stand-in for ImageNet.

Split: one fixed, stratified split, identical on every machine and run, so that results are
comparable and val/test never leak into training: train 1,497 / val 150 / test 150, drawn with
``sklearn.model_selection.train_test_split(stratify=labels, random_state=SPLIT_SEED)`` (test
first, then val from the rest). ``cfg.data.seed`` does not change it on purpose.

Pixels: 8x8 grey levels are upsampled to ``cfg.data.image_size`` with *bilinear* interpolation
(``align_corners=False``), mapped from [0, 16] to [-1, 1] and repeated to 3 identical RGB
channels, so the image model and its metrics run unchanged.

Horizontal flip is always OFF here, whatever ``cfg.data.hflip`` says: a mirrored digit is a
different glyph (or none), so flipping would corrupt the class-conditional distribution.

``cfg.data.root`` may name an ``.npz`` written by :func:`prepare` (the workflow's versioned data
artefact); it is then read instead of calling scikit-learn. Empty root = load directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from unite.atomic import atomic_write
from unite.config import Config
from unite.errors import UserError

SPLIT_SEED = 1797  # fixed forever: changing it changes every digits result
SPLIT_SIZES = {"train": 1497, "val": 150, "test": 150}
MAX_LEVEL = 16.0  # digits grey levels are integers 0..16
FORMAT_VERSION = 1


def load_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fixed split straight from scikit-learn: split -> (images uint8 (N,8,8), labels int64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # values 0..16
    labels = digits.target.astype(np.int64)
    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=SPLIT_SIZES["test"], stratify=labels, random_state=SPLIT_SEED
    )
    train, val = train_test_split(
        rest, test_size=SPLIT_SIZES["val"], stratify=labels[rest], random_state=SPLIT_SEED
    )
    return {name: (images[idx], labels[idx]) for name, idx in
            (("train", train), ("val", val), ("test", test))}


def read_prepared(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"])) if "meta" in f else {}
            if meta.get("dataset") != "digits":
                raise UserError(f"{path} is not a prepared digits file (meta: {meta})")
            return {s: (f[f"{s}_images"], f[f"{s}_labels"]) for s in SPLIT_SIZES}
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot read prepared digits file {path}: {exc}") from None


def _source(cfg: Config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not cfg.data.root:
        return load_splits()
    path = Path(cfg.data.root)
    if not path.is_file():
        raise UserError(
            f"data.root={cfg.data.root!r}: no such file; for digits it must name an .npz written "
            "by `python -m unite prepare` (or be empty to load scikit-learn's digits directly)"
        )
    return read_prepared(path)


class DigitsDataset(Dataset):
    """Items ``(x, y)``: x float (3, S, S) in [-1, 1], y an int class 0..9. No augmentation."""

    hflip = False  # never, see module docstring

    def __init__(self, cfg: Config, split: str):
        if split not in SPLIT_SIZES:
            raise UserError(f"digits has splits {', '.join(SPLIT_SIZES)}, not {split!r}")
        images, labels = _source(cfg)[split]
        if split == "train" and cfg.data.subset > 0:
            images, labels = images[: cfg.data.subset], labels[: cfg.data.subset]
        self.image_size = cfg.data.image_size
        self.raw = images  # uint8 (N, 8, 8), levels 0..16
        self.labels = labels.astype(np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def upsample(self, raw: np.ndarray) -> torch.Tensor:
        """uint8 (N, 8, 8) levels -> float (N, 3, S, S) in [-1, 1] (bilinear)."""
        x = torch.from_numpy(raw.astype(np.float32) / MAX_LEVEL * 2.0 - 1.0)[:, None]
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        return x.clamp_(-1.0, 1.0).expand(-1, 3, -1, -1).contiguous()

    def __getitem__(self, i: int):
        return self.upsample(self.raw[i : i + 1])[0], int(self.labels[i])


def prepare(cfg: Config, out_path: str | Path) -> dict:
    """Write the fixed split as one .npz (``{split}_images`` uint8 (N,8,8), ``{split}_labels``,
    ``meta`` JSON) and return a summary (the workflow's data artefact)."""
    splits = load_splits()
    meta = {
        "dataset": "digits",
        "source": "sklearn.datasets.load_digits",
        "format_version": FORMAT_VERSION,
        "split_seed": SPLIT_SEED,
        "counts": {s: int(len(y)) for s, (_, y) in splits.items()},
        "levels": [0, int(MAX_LEVEL)],
    }
    arrays = {}
    for s, (x, y) in splits.items():
        arrays[f"{s}_images"], arrays[f"{s}_labels"] = x, y
    with atomic_write(out_path) as fh:  # a file object: np.savez would append .npz to a path
        np.savez_compressed(fh, meta=np.str_(json.dumps(meta)), **arrays)
    return meta
