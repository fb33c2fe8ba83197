"""Feature networks of the image metrics: which network (InceptionV3 or the digits CNN), its
weights file, and feature extraction through torch-fidelity.

Two networks share one code path: the paper's InceptionV3 (``inception-v3-compat``, weights from
a local file, never downloaded) and the digits CNN of :mod:`unite.metrics.digits_classifier`
that stands in for it on the embedded default, whose numbers carry a ``_digits`` suffix because
they are not comparable with ImageNet FID.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

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

    from unite.checkpoint import resolve_device

    # torch-fidelity takes a cuda flag; "cuda:1" counts as cuda (the current device)
    cuda = str(resolve_device(device)).startswith("cuda")
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
