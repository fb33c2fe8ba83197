"""Reference statistics of the image metrics: feature mean/covariance of a dataset split,
computed once and cached in an ``.npz`` with a JSON ``meta`` (which network, weights, data), or
ADM's reference batches read as they are (:mod:`unite.metrics.adm_reference`); which protocol a
reference belongs to and what it says about the scale of a result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from unite.artifacts import META, npz_members, read_npz
from unite.atomic import atomic_write
from unite.errors import UserError
from unite.metrics.features import FeatureSpec, extract_features, feature_spec
from unite.metrics.image_sets import SplitAsUInt8, describe_preprocess, split_dataset
from unite.provenance import file_sha256

STATS_FORMAT = 1


def fid_statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """mu / sigma of a feature set (torch-fidelity's own function)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(features)


def stats_meta(spec: FeatureSpec, out: str | Path | None = None, **extra) -> dict:
    """What a reference file records; ``weights_from_ref`` (the weights' path relative to the
    file ``out``) lets evaluations find the weights from any working directory."""
    meta = {
        "format": STATS_FORMAT,
        "features": spec.kind,
        "extractor": spec.extractor,
        "fid_layer": spec.fid_layer,
        "weights": spec.weights,
        "weights_sha256": file_sha256(spec.weights),
        **extra,
    }
    if out is not None:
        meta["weights_from_ref"] = os.path.relpath(Path(spec.weights).resolve(),
                                                   Path(out).resolve().parent)
    return meta


def save_ref_stats(path: str | Path, stats: dict, meta: dict) -> None:
    with atomic_write(path, "wb") as fh:
        np.savez(fh, mu=stats["mu"], sigma=stats["sigma"], **{META: np.str_(json.dumps(meta))})


def load_ref_stats(path: str | Path) -> tuple[dict, dict]:
    """-> ({"mu", "sigma"}, meta) of our reference-statistics file or of an ADM reference batch
    (:mod:`unite.metrics.adm_reference`); a missing or foreign file is a UserError saying what
    to run. ``meta["format"]`` tells which protocol the reference belongs to."""
    from unite.metrics import adm_reference

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"reference statistics not found: {path}. Compute them once with "
            f"`python -m unite evaluate ref-stats --config C --out {path} --features inception|digits "
            f"--weights W`"
        )
    if adm_reference.is_adm_batch(npz_members(path)):  # [] if unreadable: read_npz says why
        return adm_reference.read_stats(path)
    arrays, meta = read_npz(path, "reference statistics")
    if not {"mu", "sigma"} <= arrays.keys() or not meta:
        raise UserError(f"{path} is not a reference-statistics file (needs mu, sigma, meta; has "
                        f"{', '.join(arrays) or 'nothing'}); recompute it with `evaluate ref-stats`")
    stats = {"mu": arrays["mu"], "sigma": arrays["sigma"]}
    meta["weights"] = resolve_weights(meta, path)
    return stats, meta


def resolve_weights(meta: dict, ref_path) -> str | None:
    """The feature-weights file a reference records, wherever the command runs from: the path
    relative to the reference file (``weights_from_ref``) if it exists there, else the path as
    recorded (absolute, or relative to the folder the reference was made in)."""
    recorded = meta.get("weights")
    rel = meta.get("weights_from_ref")
    if rel:
        beside = Path(ref_path).parent / rel
        if beside.is_file():
            return str(beside)
    return recorded


def spec_for_ref(ref_meta: dict, features: str | None, weights: str | None, ref_path) -> FeatureSpec:
    """The feature network of a reference file, unless overridden; refuse a mismatch, since FID
    between features of two different networks is meaningless."""
    kind = features or ref_meta.get("features")
    if ref_meta.get("features") != kind:
        raise UserError(
            f"{ref_path} holds {ref_meta.get('features')} features, but --features {kind} was asked"
        )
    spec = feature_spec(kind, weights or ref_meta.get("weights"), ref_meta.get("fid_layer"))
    if ref_meta.get("weights_sha256") not in (None, file_sha256(spec.weights)):
        raise UserError(
            f"{ref_path} was computed with different feature weights than {spec.weights}; "
            "recompute the reference statistics with these weights"
        )
    return spec


def reference_protocol(ref_meta: dict) -> str:
    """``adm`` for ADM's reference batches, ``unite`` for statistics computed here (the
    paper's protocol: torch-fidelity features of the dataset's train split)."""
    from unite.metrics.adm_reference import FORMAT

    return FORMAT if ref_meta.get("format") == FORMAT else "unite"


def ref_scale(ref_meta: dict, spec: FeatureSpec) -> dict:
    return {
        "feature_network": spec.extractor,
        "fid_protocol": reference_protocol(ref_meta),
        "ref_dataset": ref_meta.get("dataset"),
        "ref_split": ref_meta.get("split"),
        "ref_num_images": ref_meta.get("num_images"),
    }


def ref_flags(ref_meta: dict) -> list[str]:
    n, full = ref_meta.get("num_images"), ref_meta.get("split_size")
    if n and full and n < full:
        return [f"reference statistics from {n} of the {full} {ref_meta.get('split')} images"]
    return []



# ----------------------------------------------------------------------------- reference statistics

CACHE_KEYS = ("format", "features", "fid_layer", "weights_sha256", "dataset", "data_root",
              "image_size", "split", "num_images")


def reference_stats(
    cfg,
    out: str | Path,
    spec: FeatureSpec,
    *,
    split: str = "train",
    limit: int = 0,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | None = None,
    force: bool = False,
    verbose: bool = True,
) -> tuple[dict, bool]:
    """Feature mean/covariance of a dataset split, computed once and cached in ``out``.

    Returns (meta, reused). A file made from other data, features or weights is recomputed.
    """
    ds = split_dataset(cfg, split)
    images = SplitAsUInt8(ds, limit)
    meta = stats_meta(
        spec,
        out,
        dataset=cfg.data.kind,
        experiment=cfg.name,
        data_root=cfg.data.root,
        image_size=cfg.data.image_size,
        split=split,
        num_images=len(images),
        split_size=len(ds),
        preprocess=describe_preprocess(cfg),
    )
    if Path(out).is_file() and not force:
        try:
            _, old = load_ref_stats(out)
        except UserError:
            old = {}
        if all(old.get(k) == meta[k] for k in CACHE_KEYS):
            return old, True
    feats = extract_features(  # FID layer only: 1.28M ImageNet logits would be 5 GB more
        images, spec, batch_size=batch_size, num_workers=num_workers, device=device,
        layers=[spec.fid_layer], verbose=verbose,
    )
    save_ref_stats(out, fid_statistics(feats[spec.fid_layer]), meta)
    return meta, False
