"""Image metrics through torch-fidelity: gFID / IS (/ precision-recall) of samples against
reference statistics, rFID, and the pixel metrics of reconstructions (PSNR, L1, LPIPS), named
and flagged as the team's result objects.

torch-fidelity does the maths (Frechet distance, Inception Score, precision/recall); the
feature networks are :mod:`unite.metrics.features`, the uint8 inputs
:mod:`unite.metrics.image_sets`, the reference statistics :mod:`unite.metrics.reference`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from unite.checkpoint import resolve_device
from unite.errors import UserError
from unite.metrics.features import DIGITS, INCEPTION, FeatureSpec, extract_features
from unite.metrics.image_sets import UInt8Images
from unite.metrics.psnr import mean_psnr_uint8
from unite.metrics.reference import (
    fid_statistics,
    ref_flags,
    ref_scale,
    reference_protocol,
)

PAPER_NUM_SAMPLES = 50_000  # the paper's gFID protocol: 50 per class x 1000 classes


def frechet_distance(stats_1: dict, stats_2: dict) -> float:
    """torch-fidelity's Frechet distance, on float64 statistics (ours hold a float32 mean,
    ADM's reference batches float64; torch-fidelity refuses mixed dtypes)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    s1, s2 = ({k: np.asarray(s[k], dtype=np.float64) for k in ("mu", "sigma")}
              for s in (stats_1, stats_2))
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """(mean, std) over splits; torch-fidelity's defaults (shuffled, seed 2020, 10 splits)."""
    from torch_fidelity.metric_isc import (
        KEY_METRIC_ISC_MEAN,
        KEY_METRIC_ISC_STD,
        isc_features_to_metric,
    )

    out = isc_features_to_metric(logits, splits, True, seed)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])



# ----------------------------------------------------------------------------- metrics


def sample_count_flags(n: int, expected: int | None, feature_dim: int, what: str = "FID") -> list[str]:
    flags = []
    if expected and n < expected:
        flags.append(
            f"{what} on {n} samples, fewer than the {expected} configured: FID is biased upwards "
            "with fewer samples and not comparable to the full protocol"
        )
    if n <= feature_dim:
        flags.append(
            f"{what} on {n} samples <= feature dimension {feature_dim}: the covariance is singular"
        )
    return flags


def generation_metrics(
    images: np.ndarray,
    labels: np.ndarray | None,
    ref_stats: dict,
    spec: FeatureSpec,
    *,
    isc_splits: int = 10,
    batch_size: int = 64,
    device: str | None = None,
    verbose: bool = True,
    source: str = "samples",
    ref_images: np.ndarray | None = None,
    suffix: str = "",
) -> dict:
    """FID against the reference statistics, IS, and (digits only) class accuracy of samples
    (``source`` names them in messages); with ``ref_images``, precision/recall (k = 3,
    torch-fidelity) against their features too. ``suffix`` names the protocol in the keys
    (``_adm``: ``fid_adm``, ...)."""
    feats = extract_features(UInt8Images(images), spec, batch_size=batch_size, device=device, verbose=verbose)
    stats = fid_statistics(feats[spec.fid_layer])
    if stats["mu"].shape != ref_stats["mu"].shape:
        raise UserError(
            f"feature size {stats['mu'].shape} differs from the reference statistics' {ref_stats['mu'].shape}"
        )
    is_mean, is_std = inception_score(feats[spec.isc_layer], splits=isc_splits)
    out = {
        spec.name("fid") + suffix: frechet_distance(stats, ref_stats),
        spec.name("is") + suffix: is_mean,
        spec.name("is_std") + suffix: is_std,
    }
    if spec.kind == DIGITS and labels is not None:
        from unite.metrics.inputs import check_labels

        check_labels(np.asarray(labels), len(images), source, feats[spec.isc_layer].shape[1])
        pred = feats[spec.isc_layer].argmax(dim=1).numpy()
        out[spec.name("class_accuracy")] = float((pred == np.asarray(labels)).mean())
    if ref_images is not None:
        ref_feats = extract_features(UInt8Images(ref_images), spec, batch_size=batch_size,
                                     device=device, layers=[spec.fid_layer], verbose=verbose)
        precision, recall = precision_recall(feats[spec.fid_layer], ref_feats[spec.fid_layer])
        out[spec.name("precision") + suffix] = precision
        out[spec.name("recall") + suffix] = recall
    out["num_samples"] = int(len(images))
    return out


def precision_recall(sample_features: torch.Tensor, ref_features: torch.Tensor,
                     neighborhood: int = 3) -> tuple[float, float]:
    """Improved precision/recall (Kynkaanniemi et al.; ADM's k = 3) by torch-fidelity:
    precision = samples inside the reference manifold, recall = the converse."""
    from torch_fidelity.metric_prc import (
        KEY_METRIC_PRECISION,
        KEY_METRIC_RECALL,
        prc_features_to_metric,
    )

    out = prc_features_to_metric(sample_features, ref_features, prc_neighborhood=neighborhood,
                                 prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def l1(originals: np.ndarray, recon: np.ndarray) -> float:
    """Mean absolute error with pixels scaled to [-1, 1] (the training loss's scale)."""
    return float(np.abs(originals.astype(np.float64) - recon.astype(np.float64)).mean() / 127.5)


def vgg_weights_file() -> Path:
    """Where torchvision keeps the ImageNet VGG16 weights that LPIPS needs."""
    import torchvision

    url = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def lpips_distance(
    originals: np.ndarray,
    recon: np.ndarray,
    *,
    random_backbone: bool = False,
    batch_size: int = 32,
    device: str | None = None,
    verbose: bool = True,
) -> float:
    """Mean LPIPS (VGG). With ``random_backbone`` the VGG trunk is random (not comparable)."""
    import lpips
    from tqdm import tqdm

    device = resolve_device(device)
    net = lpips.LPIPS(net="vgg", pnet_rand=random_backbone, verbose=False).to(device).eval()
    total, n = 0.0, len(originals)
    with torch.no_grad():
        for i in tqdm(range(0, n, batch_size), desc="LPIPS", disable=not verbose, leave=False):
            a = torch.from_numpy(originals[i : i + batch_size]).permute(0, 3, 1, 2).float() / 127.5 - 1
            b = torch.from_numpy(recon[i : i + batch_size]).permute(0, 3, 1, 2).float() / 127.5 - 1
            total += float(net(a.to(device), b.to(device)).sum())
    return total / n


def recon_metrics(
    originals: np.ndarray,
    recon: np.ndarray,
    spec: FeatureSpec,
    *,
    ref_stats: dict | None = None,
    lpips_random: bool = False,
    batch_size: int = 64,
    device: str | None = None,
    verbose: bool = True,
) -> tuple[dict, list[str]]:
    """rFID (reconstructions vs originals), PSNR, L1, LPIPS -> (metrics, flags)."""
    if originals.shape != recon.shape:
        raise UserError(f"originals {originals.shape} and reconstructions {recon.shape} differ in shape")
    flags: list[str] = []
    kw = dict(batch_size=batch_size, device=device, layers=[spec.fid_layer], verbose=verbose)
    f_orig = extract_features(UInt8Images(originals), spec, **kw)
    f_rec = extract_features(UInt8Images(recon), spec, **kw)
    s_rec = fid_statistics(f_rec[spec.fid_layer])
    metrics = {
        spec.name("rfid"): frechet_distance(s_rec, fid_statistics(f_orig[spec.fid_layer])),
        "psnr": mean_psnr_uint8(originals, recon),
        "l1": l1(originals, recon),
        "num_images": int(len(originals)),
    }
    if ref_stats is not None:
        metrics[spec.name("fid_recon_vs_ref")] = frechet_distance(s_rec, ref_stats)
    if lpips_random:
        metrics["lpips"] = None
        metrics["lpips_random_backbone"] = lpips_distance(
            originals, recon, random_backbone=True, device=device, verbose=verbose
        )
        flags.append("lpips_random_backbone uses a random VGG trunk (asked for): not comparable to LPIPS")
    elif vgg_weights_file().is_file():
        metrics["lpips"] = lpips_distance(originals, recon, device=device, verbose=verbose)
    else:
        metrics["lpips"] = None
        # the flag reaches the tables: name the file, not this machine's path (that goes to
        # the log), so that the same run elsewhere gives the same table
        print(f"lpips not computed: {vgg_weights_file()} does not exist", file=sys.stderr)
        flags.append(
            f"lpips not computed: the ImageNet VGG16 weights ({vgg_weights_file().name}) are "
            "not in $TORCH_HOME/hub/checkpoints/ (no download here); copy them there, or pass "
            "--lpips-random for a clearly labelled random-backbone value"
        )
    return metrics, flags


# ----------------------------------------------------------------------------- result objects


def expected_sample_count(meta: dict, explicit: int | None) -> int | None:
    """How many samples the run was configured for: --expect-samples, else the sample file's
    ``total_samples`` (a lone shard or a short gather shows up as fewer)."""
    if explicit:
        return explicit
    total = meta.get("total_samples")
    return int(total) if total else None


PROTOCOL_TEXT = {
    "unite": "UNITE: torch-fidelity features, FID against reference statistics of the "
    "dataset's train split computed here",
    "adm": "ADM: FID against the mu/sigma of ADM's reference batch (its TensorFlow Inception "
    "pool_3); features of our samples from torch-fidelity's port of that network; "
    "precision/recall k=3 against its arr_0 images; sFID not computed",
}


def samples_result(
    images: np.ndarray,
    labels: np.ndarray | None,
    meta: dict,
    ref_stats: dict,
    ref_meta: dict,
    spec: FeatureSpec,
    *,
    expect_samples: int | None = None,
    isc_splits: int = 10,
    batch_size: int = 64,
    device: str | None = None,
    verbose: bool = True,
    source: str = "samples",
    ref_path: str | Path | None = None,
    samples_path: str | Path | None = None,
    ref_images: np.ndarray | None = None,
) -> dict:
    """gFID / IS (/ class accuracy, / precision-recall) of one sample set as the team's
    ``gen_images`` object. Against an ADM reference batch the keys carry ``_adm``."""
    from unite.artifacts import result
    from unite.provenance import missing_flag

    if meta.get("label_mode") == "unconditional":
        labels = None
    protocol = reference_protocol(ref_meta)
    suffix = "_adm" if protocol == "adm" else ""
    metrics = generation_metrics(
        images, labels, ref_stats, spec,
        isc_splits=isc_splits, batch_size=batch_size, device=device, verbose=verbose,
        source=source, ref_images=ref_images, suffix=suffix,
    )
    n = len(images)
    flags = sample_count_flags(n, expected_sample_count(meta, expect_samples), len(ref_stats["mu"]))
    if spec.kind == INCEPTION and n < PAPER_NUM_SAMPLES:
        flags.append(f"gFID on {n} samples; the paper's protocol uses {PAPER_NUM_SAMPLES}")
    flags += ref_flags(ref_meta)
    if n < isc_splits:
        flags.append(f"IS over {isc_splits} splits of only {n} samples")
    if protocol == "adm":
        metrics["sfid_adm"] = None
        flags.append("sFID not computed: torch-fidelity exposes no mixed_6/conv features")
        if ref_images is None:
            flags.append("precision/recall not computed (no reference images asked for or held)")
    scale = {**meta, **ref_scale(ref_meta, spec), "num_samples": n}
    prov = image_provenance("gen_images", spec, ref_path, ref_meta, meta=meta,
                            samples_path=samples_path)
    return result(
        experiment=meta.get("experiment", "unknown"), kind="gen_images",
        metrics=metrics, scale=scale, flags=flags + missing_flag(prov), provenance=prov,
    )


def recon_result(
    originals: np.ndarray,
    recon: np.ndarray,
    meta: dict,
    spec: FeatureSpec,
    *,
    ref_stats: dict | None = None,
    ref_meta: dict | None = None,
    ref_path: str | Path | None = None,
    recon_path: str | Path | None = None,
    lpips_random: bool = False,
    batch_size: int = 64,
    device: str | None = None,
    verbose: bool = True,
) -> dict:
    """rFID / PSNR / L1 / LPIPS of one reconstruction file as the team's ``recon_images``
    object (``meta``: the file's; its PSNR summary is dropped, the metrics hold PSNR)."""
    from unite.artifacts import result
    from unite.provenance import missing_flag

    ref_meta = ref_meta or {}
    metrics, flags = recon_metrics(
        originals, recon, spec, ref_stats=ref_stats, lpips_random=lpips_random,
        batch_size=batch_size, device=device, verbose=verbose,
    )
    n = len(originals)
    flags += sample_count_flags(n, meta.get("split_size"), spec.dim, "rFID")
    if spec.kind == INCEPTION and n < PAPER_NUM_SAMPLES:
        flags.append(f"rFID on {n} images; the paper uses the {PAPER_NUM_SAMPLES} ImageNet val images")
    flags += ref_flags(ref_meta)
    meta = {k: v for k, v in meta.items() if k != "psnr"}  # the metrics hold PSNR
    scale = {**meta, **ref_scale(ref_meta, spec), "num_images": n, "recon_file": str(recon_path)}
    prov = image_provenance("recon_images", spec, ref_path, ref_meta, meta=meta,
                            samples_path=recon_path)
    return result(experiment=meta.get("experiment", "unknown"), kind="recon_images",
                  metrics=metrics, scale=scale, flags=flags + missing_flag(prov), provenance=prov)


def image_provenance(kind: str, spec: FeatureSpec, ref_path, ref_meta: dict, *,
                     meta: dict | None = None, samples_path=None, **extra) -> dict:
    """Provenance of an image metric: the model/sampling fields of the file's meta (or of a
    checkpoint's, for in-process sampling), the feature network and the reference."""
    from unite import provenance as pv

    fields = pv.from_file_meta(meta, samples_path) if meta is not None else {}
    protocol = reference_protocol(ref_meta) if ref_meta else "unite"
    fields |= {
        "protocol": PROTOCOL_TEXT[protocol],
        "feature_network": spec.extractor,
        "feature_layer": spec.fid_layer,
        "feature_weights": spec.weights,
        "feature_weights_sha256": pv.sha256_or_none(spec.weights),
    }
    if ref_path is not None:
        fields |= {
            "reference": str(ref_path),
            "reference_sha256": pv.sha256_or_none(ref_path),
            "reference_format": protocol,
            "reference_dataset": ref_meta.get("dataset"),
            "reference_split": ref_meta.get("split"),
            "reference_count": ref_meta.get("num_images"),
            "reference_preprocess": ref_meta.get("preprocess"),
            "reference_features": ref_meta.get("feature_source")
            or f"{ref_meta.get('extractor')} layer {ref_meta.get('fid_layer')}, weights sha256 "
            f"{ref_meta.get('weights_sha256')}",
        }
    return pv.build(kind, **(fields | extra))
