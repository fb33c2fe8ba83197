"""ImageNet-style image folders: ``root/train/<wnid>/*.JPEG``, ``root/val/<wnid>/*.JPEG``.

Class indices come from the *sorted train* class folders, and val/test use that same map, so a
label means the same class in every split. Preprocessing is the ADM center crop (the paper's
"ADM center crop"), then a horizontal flip with p = 0.5 on train when ``cfg.data.hflip``, then
pixels mapped to [-1, 1].

Corrupt files: found lazily, when an item is read (a pre-scan of 1.28M ImageNet files would
cost minutes at every start; ``prepare`` does that scan once and records the result).
``data.on_corrupt: error`` raises :class:`UserError` naming the file. ``skip`` returns the next
readable item in index order instead (deterministic: same index -> same replacement), counts
the file in ``corrupt_count`` (a shared-memory counter, so DataLoader workers add to it too),
logs a warning naming it, and ``report_corrupt()`` logs the total (call it at the end of an
epoch). A corrupt file never yields a wrong or blank image.

``cfg.data.root`` may also name the JSON index written by :func:`prepare`; the file list is
then read from it (no folder scan) and files it marks corrupt are left out in skip mode.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from unite.atomic import atomic_write
from unite.config import Config
from unite.errors import UserError

log = logging.getLogger(__name__)

EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".ppm")
INDEX_FORMAT = "unite-imagefolder-index/1"
LAYOUT = (
    "expected layout: ROOT/train/<class>/<image>.JPEG and ROOT/val/<class>/<image>.JPEG "
    "(one sub-folder per class, e.g. ImageNet wnids; val uses train's class list)"
)


def adm_center_crop(img: Image.Image, size: int) -> Image.Image:
    """ADM center crop: halve with a box filter while the short side is >= 2*size (cheap,
    alias-free), then one bicubic resize that makes the short side exactly ``size``, then
    cut the central size x size square."""
    while min(img.size) >= 2 * size:
        img = img.resize((img.width // 2, img.height // 2), resample=Image.BOX)
    scale = size / min(img.size)
    new = (max(size, round(img.width * scale)), max(size, round(img.height * scale)))
    img = img.resize(new, resample=Image.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float (3, H, W) in [-1, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def _is_image(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS) and not name.startswith(".")


def list_classes(split_dir: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))


def scan_split(root: Path, split: str, classes: list[str]) -> list[tuple[str, int]]:
    """(path relative to root, class index) for every image of a split, sorted."""
    split_dir = root / split
    if not split_dir.is_dir():
        raise UserError(f"image folder split missing: {split_dir}; {LAYOUT}")
    index = {c: i for i, c in enumerate(classes)}
    found = list_classes(split_dir)
    unknown = [c for c in found if c not in index]
    if unknown:
        raise UserError(
            f"{split_dir} has class folders not in train: {', '.join(unknown[:5])}; {LAYOUT}"
        )
    items = []
    for c in found:
        names = sorted(e.name for e in os.scandir(split_dir / c) if e.is_file() and _is_image(e.name))
        items += [(f"{split}/{c}/{n}", index[c]) for n in names]
    if not items:
        raise UserError(f"no images found under {split_dir}; {LAYOUT}")
    return items


def train_classes(root: Path) -> list[str]:
    if not root.is_dir():
        raise UserError(f"image folder root not found: {root}; {LAYOUT}")
    if not (root / "train").is_dir():
        raise UserError(f"{root} has no train/ folder; {LAYOUT}")
    classes = list_classes(root / "train")
    if not classes:
        raise UserError(f"{root / 'train'} has no class folders; {LAYOUT}")
    return classes


def _read_index(path: Path) -> dict:
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read image index {path}: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise UserError(f"{path} is not an image-folder index written by `unite prepare`")
    return index


class ImageFolderDataset(Dataset):
    """Items ``(x, y)``: x float (3, S, S) in [-1, 1] (ADM crop, optional flip), y the class."""

    def __init__(self, cfg: Config, split: str):
        self.size = cfg.data.image_size
        self.hflip = bool(cfg.data.hflip) and split == "train"
        self.on_corrupt = cfg.data.on_corrupt
        source = Path(cfg.data.root) if cfg.data.root else None
        if source is None:
            raise UserError(f"data.root is empty; set it to an image folder. {LAYOUT}")
        known_bad: set[str] = set()
        if source.is_file():
            index = _read_index(source)
            self.root = Path(index["root"])
            self.classes = list(index["classes"])
            if split not in index["splits"]:
                raise UserError(f"index {source} has no split {split!r}")
            self.items = [(p, int(y)) for p, y in index["splits"][split]["files"]]
            known_bad = set(index["splits"][split].get("corrupt", []))
        else:
            self.root = source
            self.classes = train_classes(source)
            self.items = scan_split(source, split, self.classes)
        if len(self.classes) != cfg.data.num_classes:
            raise UserError(
                f"data.num_classes={cfg.data.num_classes} but {self.root / 'train'} has "
                f"{len(self.classes)} class folders"
            )
        if known_bad:
            if self.on_corrupt == "error":
                raise UserError(f"corrupt image file (marked by prepare): {self.root / min(known_bad)}")
            self.items = [it for it in self.items if it[0] not in known_bad]
        if split == "train" and cfg.data.subset > 0:
            # a seeded subset, so that a small run still sees every class
            order = np.random.default_rng(cfg.data.seed).permutation(len(self.items))
            self.items = [self.items[i] for i in sorted(order[: cfg.data.subset])]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.labels = np.array([y for _, y in self.items], dtype=np.int64)
        self._corrupt = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._reported = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def corrupt_count(self) -> int:
        """Corrupt files met so far (each read attempt counts; all workers together)."""
        return int(self._corrupt.item())

    def report_corrupt(self) -> int:
        """Log a warning with the number of corrupt files skipped since the last report."""
        n = self.corrupt_count
        if n > self._reported:
            log.warning("skipped %d corrupt image read(s) in %s (data.on_corrupt=skip)",
                        n - self._reported, self.root)
        self._reported = n
        return n

    def load(self, i: int) -> Image.Image:
        path = self.root / self.items[i][0]
        with Image.open(path) as img:
            return adm_center_crop(img.convert("RGB"), self.size)

    def __getitem__(self, i: int):
        for offset in range(len(self.items)):
            j = (i + offset) % len(self.items)
            try:
                img = self.load(j)
            except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
                path = self.root / self.items[j][0]
                if self.on_corrupt == "error":
                    raise UserError(f"corrupt or unreadable image file: {path} ({exc})") from None
                self._corrupt += 1
                log.warning("skipping corrupt image %s (%s)", path, exc)
                continue
            if self.hflip and torch.rand(()) < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            return to_tensor(img), self.items[j][1]
        raise UserError(f"no readable image in {self.root}")


def verify(path: Path) -> str | None:
    """Cheap integrity check (header + structure, no full decode): None or the error."""
    try:
        with Image.open(path) as img:
            img.verify()
        return None
    except Exception as exc:  # PIL raises many types for bad files
        return f"{type(exc).__name__}: {exc}"


def prepare(cfg: Config, out_path: str | Path) -> dict:
    """Scan and verify the folder once; write a JSON index (files, class map, counts, corrupt
    files) that later runs can use as ``data.root`` and the workflow can version."""
    from tqdm import tqdm

    if not cfg.data.root:
        raise UserError(f"data.root is empty; set it to an image folder. {LAYOUT}")
    root = Path(cfg.data.root).resolve()
    classes = train_classes(root)
    splits = {}
    for split in ("train", "val", "test"):
        if split != "train" and not (root / split).is_dir():
            continue
        items = scan_split(root, split, classes)
        bad = []
        for rel, _ in tqdm(items, desc=f"verify {split}", unit="img", mininterval=2.0):
            err = verify(root / rel)
            if err:
                bad.append(rel)
                log.warning("corrupt image %s: %s", root / rel, err)
        splits[split] = {
            "count": len(items),
            "corrupt": bad,
            "class_counts": np.bincount([y for _, y in items], minlength=len(classes)).tolist(),
            "files": [[rel, y] for rel, y in items],
        }
    index = {
        "format": INDEX_FORMAT,
        "root": str(root),
        "classes": classes,
        "class_to_idx": {c: i for i, c in enumerate(classes)},
        "counts": {s: v["count"] for s, v in splits.items()},
        "corrupt_counts": {s: len(v["corrupt"]) for s, v in splits.items()},
        "splits": splits,
    }
    with atomic_write(out_path, "w") as fh:
        fh.write(json.dumps(index))
    return {k: index[k] for k in ("root", "counts", "corrupt_counts")} | {"num_classes": len(classes)}
