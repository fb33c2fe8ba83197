"""ADM's reference batches (guided-diffusion ``evaluations/``), read directly.

DiT, SiT, REPA, REPA-E and LightningDiT report FID against
``VIRTUAL_imagenet256_labeled.npz``, computed by ADM's TensorFlow evaluator. That file is a
numpy ``.npz`` with

* ``mu`` (2048,) and ``sigma`` (2048, 2048), float64: mean and covariance of the InceptionV3
  ``pool_3`` features of the whole ImageNet train set, ADM-center-cropped to 256x256 (ADM's
  evaluations README: "pre-computed statistics over the whole dataset");
* ``mu_s`` / ``sigma_s``: the same for the spatial features (``mixed_6/conv``, first 7
  channels) behind sFID;
* ``arr_0``: 10,000 reference images, uint8 (N, 256, 256, 3), for precision and recall (the
  labeled variant may also hold ``arr_1``, their classes).

torch-fidelity's ``inception-v3-compat`` is a port of the same TensorFlow graph (2015-12-05
weights) and its ``2048`` features are ``pool_3``, so FID against ``mu``/``sigma`` is the ADM
protocol's FID up to the port's numerical differences. Precision/recall use the same
definition as ADM (k = 3 nearest neighbours of Inception ``pool_3`` features, samples
against ``arr_0``), computed by torch-fidelity. sFID is not computed: torch-fidelity exposes no
``mixed_6/conv`` features (the file's ``mu_s``/``sigma_s`` are recorded as present only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unite.errors import UserError

FORMAT = "adm"
FEATURE_DIM = 2048
IMAGENET_TRAIN_SIZE = 1_281_167
REQUIRED = ("mu", "sigma")


def is_adm_batch(files: list[str]) -> bool:
    """An ADM reference batch has mu/sigma and none of our stats files' ``meta``."""
    return set(REQUIRED) <= set(files) and "meta" not in files


def read_stats(path: str | Path) -> tuple[dict, dict]:
    """-> ({"mu", "sigma"} as float64, meta describing where they come from).

    The images (``arr_0``) are not loaded here (2 GB for the ImageNet 256 batch): see
    :func:`read_images`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            files = list(f.files)
            if not set(REQUIRED) <= set(files):
                raise UserError(f"{path} is not an ADM reference batch: it lacks "
                                f"{', '.join(k for k in REQUIRED if k not in files)}")
            mu = np.asarray(f["mu"], dtype=np.float64)
            sigma = np.asarray(f["sigma"], dtype=np.float64)
            image_shape = _member_shape(f, "arr_0")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read ADM reference batch {path}: {exc}") from None
    if mu.shape != (FEATURE_DIM,) or sigma.shape != (FEATURE_DIM, FEATURE_DIM):
        raise UserError(f"{path}: mu {mu.shape} / sigma {sigma.shape}; an ADM reference batch "
                        f"holds Inception pool_3 statistics ({FEATURE_DIM},) / "
                        f"({FEATURE_DIM}, {FEATURE_DIM})")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UserError(f"{path}: mu/sigma hold non-finite values")
    if not np.allclose(sigma, sigma.T, rtol=1e-5, atol=1e-8):
        raise UserError(f"{path}: sigma is not symmetric, so it is not a covariance matrix")
    meta = {
        "format": FORMAT,
        "features": "inception",
        "extractor": "inception-v3-compat",
        "fid_layer": "2048",
        "weights": None,  # the file holds statistics only; ours come from --weights
        "weights_sha256": None,
        "feature_source": "ADM evaluator: TensorFlow InceptionV3 graph (2015-12-05), pool_3",
        "dataset": "imagenet",
        "split": "train",
        "num_images": IMAGENET_TRAIN_SIZE,
        "count_source": "ADM evaluations README: statistics over the whole dataset",
        "preprocess": "ADM center crop to 256x256; resized to 299x299 inside the Inception "
        "graph",
        "reference_images": int(image_shape[0]) if image_shape else 0,
        "has_spatial_stats": "mu_s" in files and "sigma_s" in files,
    }
    return {"mu": mu, "sigma": sigma}, meta


def _member_shape(npz, name: str) -> tuple | None:
    """Shape of one array in an .npz without reading its data (None when absent)."""
    if name not in npz.files:
        return None
    with npz.zip.open(f"{name}.npy") as fh:
        fmt = np.lib.format
        major, _ = fmt.read_magic(fh)
        read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, _, _ = read(fh)
    return tuple(shape)


def read_images(path: str | Path) -> np.ndarray:
    """The reference images ``arr_0`` as uint8 (N, H, W, 3), for precision/recall."""
    with np.load(path, allow_pickle=False) as f:
        if "arr_0" not in f.files:
            raise UserError(f"{path} holds no reference images (arr_0): precision/recall need them")
        images = f["arr_0"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"{path}: arr_0 is {images.dtype} {images.shape}, expected uint8 (N, H, W, 3)")
    return images


def write_batch(path: str | Path, stats: dict, images: np.ndarray | None = None,
                labels: np.ndarray | None = None) -> None:
    """Write a file in ADM's reference-batch layout (tests and hand-made references)."""
    from unite.atomic import atomic_write

    arrays = {"mu": np.asarray(stats["mu"], np.float64), "sigma": np.asarray(stats["sigma"], np.float64)}
    if images is not None:
        arrays["arr_0"] = images
    if labels is not None:
        arrays["arr_1"] = labels
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
