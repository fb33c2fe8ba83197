"""The offline metric of the embedded default: a digits CNN as torch-fidelity feature extractor.

Real held-out digits must score far closer to the training reference than noise images, and
the class accuracy the metric reports on real digits must be the classifier's own accuracy
(the metric path feeds the network exactly the images it was tested on). Everything runs
through the CLI and the same functions as the Inception path; only the extractor differs.
"""

import json

import numpy as np
import pytest
import torch

from unite import cli, config
from unite.artifacts import write_sample_file
from unite.metrics import digits_classifier as dc
from unite.metrics import reference as rs
from unite.provenance import file_sha256

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A briefly trained classifier and the training-split reference, made by the CLI."""
    root = tmp_path_factory.mktemp("digits")
    clf, ref = root / "clf.pt", root / "ref.npz"
    torch.set_num_threads(1)
    cli.main(["evaluate", "digits-classifier", "--out", str(clf), "--epochs", "6", "--quiet"])
    cli.main(["evaluate", "ref-stats", "--out", str(ref), "--features", "digits",
              "--weights", str(clf), "--quiet", "--device", "cpu"])
    return clf, ref


def held_out() -> tuple[np.ndarray, np.ndarray]:
    cfg = config.from_dict({})
    parts = [dc._split_uint8(cfg, s) for s in ("val", "test")]
    x = torch.cat([p[0] for p in parts]).permute(0, 2, 3, 1).numpy()
    return x, torch.cat([p[1] for p in parts]).numpy()


def evaluate(tmp_path, name, images, labels, ref) -> dict:
    samples, out = tmp_path / f"{name}.npz", tmp_path / f"{name}.json"
    meta = {"experiment": "digits", "label_mode": "balanced", "total_samples": len(images)}
    write_sample_file(samples, {"images": images, "labels": labels}, meta)
    cli.main(["evaluate", "images", "--samples", str(samples), "--ref", str(ref), "--out", str(out),
              "--quiet", "--device", "cpu"])
    return json.loads(out.read_text())


def test_real_digits_close_noise_far_accuracy_matches(assets, tmp_path, capsys):
    clf, ref = assets
    _, info = dc.load_classifier(clf)
    x, y = held_out()
    real = evaluate(tmp_path, "real", x, y, ref)
    noise_images = np.random.default_rng(0).integers(0, 256, size=x.shape, dtype=np.uint8)
    noise = evaluate(tmp_path, "noise", noise_images, y, ref)

    assert real["kind"] == "gen_images" and real["experiment"] == "digits"
    m, n = real["metrics"], noise["metrics"]
    assert set(m) == {"fid_digits", "is_digits", "is_std_digits", "class_accuracy_digits", "num_samples"}
    assert "fid" not in m  # never under the ImageNet name
    assert real["scale"]["feature_network"] == dc.EXTRACTOR_NAME
    assert m["fid_digits"] * 20 < n["fid_digits"]
    assert m["is_digits"] > 2.0 > n["is_digits"]
    assert n["class_accuracy_digits"] < 0.3  # noise: about chance

    # the metric's accuracy on real digits is the classifier's accuracy on those digits
    expected = (info["val_accuracy"] * 150 + info["test_accuracy"] * 150) / 300
    assert m["class_accuracy_digits"] == pytest.approx(expected, abs=1e-6)
    assert m["class_accuracy_digits"] > 0.7
    # 300 samples > 64 feature dimensions and the whole configured count: no flags
    # the hand-made sample file names no checkpoint: only that provenance gap is flagged
    assert [f for f in real["flags"] if not f.startswith("provenance incomplete")] == []


def test_reference_and_classifier_are_cached(assets, capsys):
    clf, ref = assets
    capsys.readouterr()
    cli.main(["evaluate", "digits-classifier", "--out", str(clf)])
    assert json.loads(capsys.readouterr().out)["cached"] is True
    cli.main(["evaluate", "ref-stats", "--out", str(ref), "--weights", str(clf), "--quiet"])
    line = json.loads(capsys.readouterr().out)
    assert line["cached"] is True and line["features"] == "digits" and line["num_images"] == 1497
    stats, meta = rs.load_ref_stats(ref)
    assert stats["mu"].shape == (dc.FEATURE_DIM,) and stats["sigma"].shape == (dc.FEATURE_DIM,) * 2
    assert meta["weights_sha256"] == file_sha256(clf)


def test_same_code_path_as_inception():
    """Only the feature extractor differs: both specs go through torch-fidelity's registry."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    dc.register()
    dc.register()  # idempotent
    assert dc.EXTRACTOR_NAME in FEATURE_EXTRACTORS_REGISTRY
    assert "inception-v3-compat" in FEATURE_EXTRACTORS_REGISTRY
    cls = FEATURE_EXTRACTORS_REGISTRY[dc.EXTRACTOR_NAME]
    assert cls.get_default_feature_layer_for_metric("fid") == dc.FID_LAYER
    assert cls.get_default_feature_layer_for_metric("isc") == dc.ISC_LAYER
