"""Image grids for eyeballing samples and reconstructions (PIL only: fast, no figure state).

``sample_grid``: one row per class (first ``max_classes`` classes present), up to ``per_row``
samples each, the class index written in a left margin. ``reconstruction_grid``: rows of
originals each followed by the row of their reconstructions, labelled "orig" / "recon".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unite.atomic import atomic_write

PAD = 2
BACKGROUND = (255, 255, 255)


def _font(cell: int):
    try:
        return ImageFont.load_default(size=max(10, min(cell // 3, 20)))
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def _upscale(images: np.ndarray, min_cell: int) -> np.ndarray:
    """Nearest-neighbour enlarge tiny images (8x8 digits) so the grid is readable."""
    factor = max(1, -(-min_cell // images.shape[1]))
    return images.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else images


def _compose(rows: list[tuple[str, np.ndarray]], path: str | Path, min_cell: int = 48) -> Path:
    """rows: (margin text, uint8 (n, H, W, 3)) -> one PNG; short rows are left blank."""
    rows = [(text, _upscale(np.asarray(imgs, dtype=np.uint8), min_cell)) for text, imgs in rows]
    cell_h, cell_w = rows[0][1].shape[1:3]
    cols = max(len(imgs) for _, imgs in rows)
    font = _font(cell_h)
    margin = max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t, font=font) for t, _ in rows)
    margin = int(margin) + 3 * PAD
    width = margin + cols * (cell_w + PAD) + PAD
    height = len(rows) * (cell_h + PAD) + PAD
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, (text, imgs) in enumerate(rows):
        top = PAD + r * (cell_h + PAD)
        draw.text((PAD, top + cell_h // 2), text, fill=(0, 0, 0), font=font, anchor="lm")
        for c, img in enumerate(imgs):
            canvas.paste(Image.fromarray(img), (margin + c * (cell_w + PAD), top))
    path = Path(path)
    with atomic_write(path) as fh:
        canvas.save(fh, format="PNG")
    return path


def sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    path: str | Path,
    *,
    per_row: int = 10,
    max_classes: int = 16,
    class_names: list[str] | None = None,
) -> Path:
    """Rows = classes (in increasing order), columns = the first ``per_row`` samples of each."""
    labels = np.asarray(labels)
    rows = []
    for y in np.unique(labels)[:max_classes]:
        name = class_names[y] if class_names else f"y={int(y)}"
        rows.append((name, images[labels == y][:per_row]))
    return _compose(rows, path)


def reconstruction_grid(
    originals: np.ndarray, reconstructions: np.ndarray, path: str | Path, *, per_row: int = 8,
    max_rows: int = 4,
) -> Path:
    """Pairs: a row of originals, then the row of their reconstructions, repeated."""
    rows = []
    for start in range(0, min(len(originals), per_row * max_rows), per_row):
        rows.append(("orig", originals[start : start + per_row]))
        rows.append(("recon", reconstructions[start : start + per_row]))
    return _compose(rows, path)
