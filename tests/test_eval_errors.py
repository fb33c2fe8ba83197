"""Evaluation mistakes stop with one clear line saying how to fix them (exit 2, no traceback),
and short sample sets are flagged in the result instead of passing silently."""

import json

import numpy as np
import pytest
import torch

from cli_helpers import user_error
from unite import cli
from unite.artifacts import write_sample_file
from unite.metrics import digits_classifier as dc
from unite.metrics import features as ft
from unite.metrics import images as im


def fail(argv, capsys) -> str:
    return user_error(argv, capsys, one_line=False)


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    """An untrained classifier file: enough to exercise the plumbing."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clf") / "clf.pt"
    torch.save({"state_dict": dc.DigitsCNN().state_dict(), "num_classes": 10, "input_size": 16,
                "image_size": 32}, path)
    return path


@pytest.fixture(scope="module")
def ref(clf, tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.npz"
    cli.main(["evaluate", "ref-stats", "--out", str(path), "--weights", str(clf), "--quiet",
              "--device", "cpu"])
    return path


def samples(tmp_path, n: int, total: int):
    rng = np.random.default_rng(0)
    path = tmp_path / "s.npz"
    write_sample_file(path, {"images": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                             "labels": np.arange(n) % 10},
                      {"experiment": "digits", "total_samples": total, "label_mode": "balanced"})
    return path


def test_missing_reference_says_how_to_make_it(tmp_path, capsys):
    s = samples(tmp_path, 10, 10)
    err = fail(["evaluate", "images", "--samples", str(s), "--ref", str(tmp_path / "nope.npz"),
                "--out", str(tmp_path / "o.json")], capsys)
    assert "reference statistics not found" in err and "evaluate ref-stats" in err


def test_missing_inception_weights_never_download(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ft.INCEPTION_WEIGHTS_ENV, raising=False)
    args = ["evaluate", "ref-stats", "--out", str(tmp_path / "r.npz"), "--features", "inception"]
    err = fail(args, capsys)
    assert "--weights" in err and ft.INCEPTION_WEIGHTS_ENV in err and "never downloaded" in err
    err = fail(args + ["--weights", str(tmp_path / "missing.pth")], capsys)
    assert "Inception weights file not found" in err and "missing.pth" in err
    assert not (tmp_path / "r.npz").exists()


def test_missing_digits_classifier_says_how_to_train_it(tmp_path, capsys):
    err = fail(["evaluate", "ref-stats", "--out", str(tmp_path / "r.npz"), "--features", "digits",
                "--weights", str(tmp_path / "clf.pt")], capsys)
    assert "digits classifier not found" in err and "evaluate digits-classifier" in err


def test_feature_network_mismatch_is_refused(ref, tmp_path, capsys):
    s = samples(tmp_path, 10, 10)
    fake = ft.write_random_inception_weights(tmp_path / "inc.pth")
    err = fail(["evaluate", "images", "--samples", str(s), "--ref", str(ref), "--out",
                str(tmp_path / "o.json"), "--features", "inception", "--weights", str(fake)], capsys)
    assert "holds digits features" in err


def test_other_weights_than_the_reference_are_refused(ref, clf, tmp_path, capsys):
    other = tmp_path / "other.pt"
    blob = torch.load(clf, weights_only=True)
    blob["state_dict"]["head.bias"] += 1.0
    torch.save(blob, other)
    s = samples(tmp_path, 10, 10)
    err = fail(["evaluate", "images", "--samples", str(s), "--ref", str(ref), "--out",
                str(tmp_path / "o.json"), "--weights", str(other)], capsys)
    assert "different feature weights" in err


def test_missing_samples_file(ref, tmp_path, capsys):
    err = fail(["evaluate", "images", "--samples", str(tmp_path / "none.npz"), "--ref", str(ref),
                "--out", str(tmp_path / "o.json")], capsys)
    assert "file not found" in err


def test_fewer_samples_than_configured_are_flagged(ref, tmp_path):
    s = samples(tmp_path, 40, 500)  # e.g. one shard of a 500-sample run
    out = tmp_path / "o.json"
    cli.main(["evaluate", "images", "--samples", str(s), "--ref", str(ref), "--out", str(out),
              "--quiet", "--device", "cpu"])
    res = json.loads(out.read_text())
    assert any("fewer than the 500 configured" in f for f in res["flags"])
    assert any("feature dimension 64" in f for f in res["flags"])  # 40 <= 64: singular covariance
    assert res["scale"]["num_samples"] == 40
    assert set(res) == {"experiment", "kind", "metrics", "scale", "flags", "provenance"}

    out2 = tmp_path / "o2.json"
    s = samples(tmp_path, 80, 80)
    cli.main(["evaluate", "images", "--samples", str(s), "--ref", str(ref), "--out", str(out2),
              "--quiet", "--device", "cpu", "--expect-samples", "80"])
    flags = json.loads(out2.read_text())["flags"]
    # a hand-made sample file names no checkpoint: only the provenance gap is flagged
    assert len(flags) == 1 and flags[0].startswith("provenance incomplete: checkpoint, ")


def test_recon_without_vgg_weights_reports_null_lpips(ref, tmp_path, monkeypatch):
    monkeypatch.setattr(im, "vgg_weights_file", lambda: tmp_path / "no-vgg.pth")
    rng = np.random.default_rng(1)
    orig = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    recon = np.clip(orig.astype(int) + rng.integers(-8, 9, orig.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "r.npz"
    write_sample_file(path, {"originals": orig, "reconstructions": recon, "labels": np.zeros(12)},
                      {"experiment": "digits", "split_size": 150, "psnr": 1.0})
    out = tmp_path / "o.json"
    cli.main(["evaluate", "recon-images", "--recon", str(path), "--ref", str(ref), "--out", str(out),
              "--quiet", "--device", "cpu"])
    res = json.loads(out.read_text())
    m = res["metrics"]
    assert res["kind"] == "recon_images"
    assert m["lpips"] is None and any("lpips not computed" in f for f in res["flags"])
    assert not any(str(tmp_path) in f for f in res["flags"])  # no machine path in the tables
    assert any("fewer than the 150 configured" in f for f in res["flags"])
    assert 25 < m["psnr"] < 40 and 0 < m["l1"] < 0.05
    assert m["rfid_digits"] >= 0 and "fid_recon_vs_ref_digits" in m
    assert "psnr" not in res["scale"]
