"""``unite reconstruct`` round trip on a tiny random checkpoint: original/reconstruction pairs
with labels and meta, seeded (batch-size independent), PSNR printed, pair grid written."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training_helpers import tiny_image_dict
from unite import checkpoint, cli, config
from unite.artifacts import read_sample_file
from unite.data import build_dataset
from unite.metrics.psnr import psnr_uint8
from unite.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = tiny_image_dict("recon-test")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = config.from_dict(TINY)
    torch.manual_seed(0)
    model = build_model(cfg)
    ema = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("run") / "last.pt"
    checkpoint.save_atomic({"model": model.state_dict(), "ema": ema, "optimizers": [],
                            "scheduler": None, "step": 11, "rng": None,
                            "config": config.to_dict(cfg), "meta": {"fine_tuned": True, "finetune": {"steps": 5, "epochs": 1, "gan_loss": "hinge", "adaptive_weight": True, "disc_weight": 0.5}}}, path)
    return path


def _recon(ckpt, out, *extra):
    cli.main(["reconstruct", "--ckpt", str(ckpt), "--split", "val", "--out", str(out),
              "--device", "cpu", *extra])


def test_reconstruct_round_trip(ckpt, tmp_path, capsys):
    _recon(ckpt, tmp_path / "r.npz", "--limit", "12", "--batch-size", "5",
           "--grid", str(tmp_path / "r.png"))
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    arrays, meta = read_sample_file(tmp_path / "r.npz")
    assert set(arrays) == {"originals", "reconstructions", "labels"}
    assert arrays["originals"].shape == arrays["reconstructions"].shape == (12, 16, 16, 3)
    assert arrays["originals"].dtype == np.uint8 == arrays["reconstructions"].dtype
    val = build_dataset(config.from_dict(TINY), "val")
    np.testing.assert_array_equal(arrays["labels"], val.labels[:12])
    first = ((val[0][0].permute(1, 2, 0) + 1) * 127.5).round().numpy().astype(np.uint8)
    np.testing.assert_array_equal(arrays["originals"][0], first)
    assert meta["split"] == "val" and meta["num_samples"] == 12 and meta["train_step"] == 11
    assert meta["fine_tuned"] is True and meta["use_ema"] is True and meta["model_size"] == "tiny"
    assert meta["experiment"] == "recon-test"
    expect = float(psnr_uint8(arrays["originals"], arrays["reconstructions"]).mean())
    assert summary["psnr"] == pytest.approx(expect, abs=1e-3) and 0 < summary["psnr"] < 60
    with Image.open(tmp_path / "r.png") as img:
        assert img.width > 8 * 16 and img.height > 2 * 16

    # seeded and batch-size independent; EMA weights differ from the raw ones
    _recon(ckpt, tmp_path / "r2.npz", "--limit", "12", "--batch-size", "12")
    again, _ = read_sample_file(tmp_path / "r2.npz")
    assert np.abs(again["reconstructions"].astype(int) - arrays["reconstructions"]).max() <= 1
    _recon(ckpt, tmp_path / "raw.npz", "--limit", "12", "--no-ema")
    raw, raw_meta = read_sample_file(tmp_path / "raw.npz")
    assert raw_meta["use_ema"] is False
    assert not np.array_equal(raw["reconstructions"], arrays["reconstructions"])


def test_psnr_known_values():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0] = 255  # MSE = 255^2 -> 0 dB
    b[1, 0, 0, 0] = 255  # MSE = 255^2 / 48
    np.testing.assert_allclose(psnr_uint8(a, b), [0.0, 10 * np.log10(48)])


def test_reconstruct_user_errors(ckpt, tmp_path, capsys):
    for extra in (["--limit", "0"], ["--data-root", str(tmp_path / "missing.npz")]):
        with pytest.raises(SystemExit) as exc:
            _recon(ckpt, tmp_path / "x.npz", *extra)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: --limit" in err and "missing.npz" in err
    with pytest.raises(SystemExit):
        _recon(tmp_path / "nope.pt", tmp_path / "x.npz")
    assert "checkpoint not found" in capsys.readouterr().err
