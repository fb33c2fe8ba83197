"""What an evaluator accepts: every input is checked against its format and its reference
before a number is computed from it.

A wrong input that still yields a number is worse than a crash: 32x32 samples scored against
16x16 reference statistics gave FID 31.6 with exit 0, NaN coordinates silently counted as
"invalid molecules", a truncated ``.npz`` ended in ``BadZipFile``. The rule here:

* **refused** (:class:`unite.errors.UserError`, one line naming the file and the array): an
  unreadable or empty file, no samples, fewer than two images for a Frechet distance, images
  at another size than the reference statistics record, labels of another length than the
  images or outside the classes, atom types that are no element (outside 0..118, 0 = empty
  slot), non-finite coordinates or lattice parameters (a diverged sampler, not chemistry);
* **flagged** (a line in the result's ``flags`` that starts with :data:`INPUT_FLAG`, which the
  tables mark): inputs a model may legitimately produce but that count as invalid by the
  protocol, e.g. crystals whose lattice cannot form a cell, or samples without atoms.

Files are read by :func:`unite.artifacts.read_npz`, which refuses the unreadable ones.
"""

from __future__ import annotations

import numpy as np

from unite.errors import UserError

INPUT_FLAG = "input: "  # prefix of flags about the evaluated inputs (tables mark such rows)
MAX_Z = 118


def require(arrays: dict, keys, path, hint: str = "") -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        have = ", ".join(arrays) or "nothing"
        raise UserError(f"{path} lacks {', '.join(missing)} (has {have}){hint}")


# -- images ---------------------------------------------------------------------------------
def check_images(images: np.ndarray, path, key: str = "images", *, min_count: int = 2,
                 image_size: int | None = None, ref_path=None) -> None:
    """uint8 (N, H, W, 1|3), N >= ``min_count`` (FID needs a covariance: two images at least),
    and H = W = ``image_size`` when the reference statistics record one."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserError(f"{path}: {key} must be uint8 (N, H, W, 3), got {images.dtype} "
                        f"{tuple(images.shape)}")
    n = len(images)
    if n == 0:
        raise UserError(f"{path}: {key} holds no images")
    if n < min_count:
        raise UserError(f"{path}: {key} holds {n} image(s); FID needs at least {min_count} "
                        "(a feature covariance), and far more to mean anything")
    h, w = images.shape[1:3]
    if image_size and (h, w) != (image_size, image_size):
        raise UserError(
            f"{path}: {key} are {h}x{w} but the reference statistics {ref_path} were computed on "
            f"{image_size}x{image_size} images; sample at that size or recompute the reference"
        )


def check_labels(labels: np.ndarray | None, n: int, path, num_classes: int | None = None) -> None:
    """One integer class per image, in [0, num_classes) when the number of classes is known."""
    if labels is None:
        return
    if labels.ndim != 1 or len(labels) != n:
        raise UserError(f"{path}: labels has shape {tuple(labels.shape)} for {n} images "
                        "(one class per image expected)")
    if n and not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: labels must be integers, got {labels.dtype}")
    if n and labels.min() < 0:
        raise UserError(f"{path}: labels holds {int(labels.min())}; classes start at 0")
    if n and num_classes is not None and labels.max() >= num_classes:
        raise UserError(f"{path}: labels holds {int(labels.max())}, but the feature network "
                        f"knows {num_classes} classes (0..{num_classes - 1})")


# -- atoms ----------------------------------------------------------------------------------
def check_atom_types(types: np.ndarray, path, key: str = "atom_types") -> None:
    """Atomic numbers per slot: integers in 0..118 (0 = empty slot)."""
    if types.size and not np.issubdtype(types.dtype, np.integer):
        if not (np.issubdtype(types.dtype, np.floating) and np.isfinite(types).all()
                and (types == np.round(types)).all()):
            raise UserError(f"{path}: {key} must hold integer atomic numbers, got {types.dtype}")
    bad = (types < 0) | (types > MAX_Z)
    if bad.any():
        value = types[bad].flat[0]
        raise UserError(f"{path}: {key} holds {value:g} in {int(bad.any(axis=-1).sum())} "
                        f"structure(s); atomic numbers are 1..{MAX_Z} (0 = empty slot)")


def check_finite(values: np.ndarray, path, key: str, what: str = "structures") -> None:
    """Coordinates / lattice parameters must be finite: NaN or inf means the sampler or decoder
    diverged, which is a bug to fix, not a chemistry result to score as 'invalid'."""
    finite = np.isfinite(values)
    if not finite.all():
        per = (~finite).reshape(len(values), -1).any(axis=1)
        raise UserError(f"{path}: {key} holds NaN/inf in {int(per.sum())} of {len(values)} "
                        f"{what} (a diverged sampler?); refusing to score them as merely invalid")


def check_count(n: int, path, what: str) -> None:
    if n == 0:
        raise UserError(f"{path} holds no {what}: nothing to evaluate")


def empty_sample_flag(types: np.ndarray, what: str) -> list[str]:
    """Samples whose every slot is empty are scored invalid; say how many there were."""
    empty = int((~(types > 0).any(axis=-1)).sum()) if len(types) else 0
    if not empty:
        return []
    return [f"{INPUT_FLAG}{empty} of {len(types)} {what} have no atoms (counted invalid)"]
