"""Image metrics through torch-fidelity: gFID / IS against cached reference statistics, rFID,
and the pixel metrics of reconstructions (PSNR, L1, LPIPS).

torch-fidelity does the maths (feature extraction, Frechet distance, Inception Score); this
module only prepares its inputs (uint8 CHW datasets), picks the feature network, caches the
reference statistics in an ``.npz`` file and names the results. One code path serves both
feature networks: the paper's InceptionV3 (``inception-v3-compat``, weights from a local file,
never downloaded) and the digits CNN of :mod:`unite.metrics.digits_classifier` that stands in
for it on the embedded default, whose numbers carry a ``_digits`` suffix because they are not
comparable with ImageNet FID.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from unite.atomic import atomic_write
from unite.errors import UserError

INCEPTION = "inception"
DIGITS = "digits"
FEATURE_KINDS = (INCEPTION, DIGITS)
INCEPTION_EXTRACTOR = "inception-v3-compat"
INCEPTION_WEIGHTS_ENV = "UNITE_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
PAPER_NUM_SAMPLES = 50_000  # the paper's gFID protocol: 50 per class x 1000 classes
STATS_FORMAT = 1


# ----------------------------------------------------------------------------- feature networks


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature network to use and how its results are named."""

    kind: str  # inception | digits
    extractor: str  # name registered with torch-fidelity
    weights: str  # local weights file
    fid_layer: str
    isc_layer: str
    suffix: str  # appended to metric names: "" (paper-comparable) or "_digits"
    dim: int  # size of the FID features
    layer_tag: str = ""  # "_768" etc. on FID names when not the network's default layer

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([self.fid_layer, self.isc_layer]))

    def name(self, metric: str) -> str:
        tag = self.layer_tag if "fid" in metric else ""
        return f"{metric}{tag}{self.suffix}"


def feature_spec(kind: str, weights: str | Path | None, fid_layer: str | None = None) -> FeatureSpec:
    """Resolve a feature network; a missing weights file is a UserError saying how to get one.

    ``fid_layer`` overrides the FID feature layer (Inception: 64, 192, 768; default 2048, the
    paper's); results then carry the layer in their names, e.g. ``fid_768``."""
    spec = _feature_spec(kind, weights)
    if fid_layer in (None, spec.fid_layer):
        return spec
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    provided = FEATURE_EXTRACTORS_REGISTRY[spec.extractor].get_provided_features_list()
    dims = {"64": 64, "192": 192, "768": 768}
    if fid_layer not in provided or fid_layer not in dims:
        raise UserError(f"--fid-layer {fid_layer}: {spec.extractor} offers {', '.join(dims)} besides {spec.fid_layer}")
    return replace(spec, fid_layer=fid_layer, layer_tag=f"_{fid_layer}", dim=dims[fid_layer])


def _feature_spec(kind: str, weights: str | Path | None) -> FeatureSpec:
    if kind == INCEPTION:
        weights = weights or os.environ.get(INCEPTION_WEIGHTS_ENV)
        if not weights:
            raise UserError(
                "the Inception feature network needs a local weights file (it is never downloaded "
                f"here): pass --weights PATH or set {INCEPTION_WEIGHTS_ENV}. Get the file on a "
                f"machine with internet access from {INCEPTION_WEIGHTS_URL}"
            )
        if not Path(weights).is_file():
            raise UserError(
                f"Inception weights file not found: {weights}. Download it on a machine with "
                f"internet access from {INCEPTION_WEIGHTS_URL} and copy it there"
            )
        return FeatureSpec(INCEPTION, INCEPTION_EXTRACTOR, str(weights), "2048", "logits_unbiased", "", 2048)
    if kind == DIGITS:
        from unite.metrics import digits_classifier as dc

        if not weights:
            raise UserError(
                "the digits feature network needs its classifier file: pass --weights CLF.pt "
                "(make it with `python -m unite evaluate digits-classifier --config C --out CLF.pt`)"
            )
        if not Path(weights).is_file():
            raise UserError(
                f"digits classifier not found: {weights}. Make it with "
                f"`python -m unite evaluate digits-classifier --config C --out {weights}`"
            )
        dc.register()
        return FeatureSpec(DIGITS, dc.EXTRACTOR_NAME, str(weights), dc.FID_LAYER, dc.ISC_LAYER, "_digits", dc.FEATURE_DIM)
    raise UserError(f"unknown feature network {kind!r}; choose one of {', '.join(FEATURE_KINDS)}")


def file_sha256(path: str | Path) -> str:
    from unite.provenance import file_sha256 as digest

    return digest(path)


def write_random_inception_weights(path: str | Path, seed: int = 0) -> Path:
    """Save an InceptionV3 (torch-fidelity's own module) with random weights, for offline tests
    and pipeline smoke runs only: its FID/IS values mean nothing.

    Convolutions and the classifier get a Kaiming-normal (variance-preserving) init: PyTorch's
    default init shrinks the activations layer by layer until every image has the same
    features and FID is ~0, which would make a test unable to fail.
    """
    import tempfile

    from torch import nn
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # skip: no weights yet
            return None

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pt"
        torch.save({}, empty)
        net = _Unloaded(INCEPTION_EXTRACTOR, ["2048"], feature_extractor_weights_path=str(empty))
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="linear")
            nn.init.zeros_(module.bias)
    path = Path(path)
    with atomic_write(path) as fh:
        torch.save(net.state_dict(), fh)
    return path


# ----------------------------------------------------------------------------- inputs


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


def to_uint8_chw(x: torch.Tensor) -> torch.Tensor:
    """One image in [-1, 1] (3, H, W) -> uint8, rounded the way sample files are written."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class SplitAsUInt8(Dataset):
    """A project dataset split, read lazily (ImageNet does not fit in memory) as uint8 CHW."""

    def __init__(self, dataset: Dataset, limit: int = 0):
        self.dataset = dataset
        self.n = min(limit, len(dataset)) if limit else len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        x, _ = self.dataset[i]
        return to_uint8_chw(x)


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


# ----------------------------------------------------------------------------- features and stats


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def extract_features(
    images: Dataset,
    spec: FeatureSpec,
    *,
    batch_size: int = 64,
    device: str | None = None,
    num_workers: int = 0,
    layers: list[str] | None = None,
    verbose: bool = True,
) -> dict[str, torch.Tensor]:
    """torch-fidelity's feature extraction over a uint8 dataset -> {layer: (N, D) tensor}
    (``layers``: default the FID and IS layers of ``spec``)."""
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    cuda = (device or default_device()) == "cuda"
    extractor = create_feature_extractor(
        spec.extractor,
        layers or spec.layers,
        cuda=cuda,
        feature_extractor_weights_path=spec.weights,
        verbose=verbose,
    )
    # torch-fidelity's save_cpu_ram only switches its DataLoader to 0 workers
    return get_featuresdict_from_dataset(
        images, extractor, batch_size, cuda, save_cpu_ram=num_workers == 0, verbose=verbose
    )


def fid_statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """mu / sigma of a feature set (torch-fidelity's own function)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(features)


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
        np.savez(fh, mu=stats["mu"], sigma=stats["sigma"], meta=np.str_(json.dumps(meta)))


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
    try:
        with np.load(path) as f:
            files = list(f.files)
    except Exception:  # read_npz below says what is wrong with the file
        files = []
    if adm_reference.is_adm_batch(files):
        return adm_reference.read_stats(path)
    from unite.metrics.inputs import read_npz

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


def psnr(originals: np.ndarray, recon: np.ndarray) -> float | None:
    """Mean per-image PSNR in dB on 8-bit pixels; pixel-identical pairs (infinite PSNR) are left
    out of the mean, as in ``unite reconstruct``'s summary (None when all are identical)."""
    diff = originals.astype(np.float64) - recon.astype(np.float64)
    mse = (diff**2).reshape(len(diff), -1).mean(axis=1)
    finite = mse[mse > 0]
    return float((10 * np.log10(255.0**2 / finite)).mean()) if len(finite) else None


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

    device = device or default_device()
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
        "psnr": psnr(originals, recon),
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


def reference_protocol(ref_meta: dict) -> str:
    """``adm`` for ADM's reference batches, ``unite`` for statistics computed here (the
    paper's protocol: torch-fidelity features of the dataset's train split)."""
    from unite.metrics.adm_reference import FORMAT

    return FORMAT if ref_meta.get("format") == FORMAT else "unite"


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
    from unite.metrics import result
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


def describe_preprocess(cfg) -> str:
    """How the reference images were made from the dataset (recorded with the statistics)."""
    size = cfg.data.image_size
    if cfg.data.kind == "digits":
        return f"8x8 scans, bilinear upsampling to {size}x{size}, no flip"
    return f"ADM center crop to {size}x{size}, no flip"


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
