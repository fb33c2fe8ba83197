"""The trajectory analysis corrupts with z_t = t*z0 + (1-t)*eps (t = 1 clean), measures PSNR of
decoded one-step predictions, and `analyze trajectory` writes JSON + strip (none for atoms)."""

import json

import pytest
import torch

from analysis_checkpoints import write_checkpoint
from unite import config
from unite.analysis.trajectory import denoising_trajectory
from unite.cli import main
from unite.metrics.psnr import psnr_tensor as psnr


def test_psnr_known_values():
    x = torch.rand(2, 3, 8, 8) * 1.6 - 0.8
    assert psnr(x, x).tolist() == pytest.approx([100.0, 100.0])
    # +0.2 in [-1, 1] is +0.1 in [0, 1]: MSE 0.01 -> 20 dB
    assert psnr(x + 0.2, x).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)


class IdentityDenoiser:
    """encode -> z0 = 0; denoise returns z_t unchanged; decode -> mean latent as a grey image.

    With z0 = 0 the 'prediction' z_t = (1-t)*eps, so its latent MSE is (1-t)^2: the check
    pins the corruption convention (t = 1 clean, t = 0 noise)."""

    latent_shape = (16, 4)

    def encode(self, x, noise=None):
        b = x["pos"].shape[0] if isinstance(x, dict) else x.shape[0]
        return torch.zeros(b, *self.latent_shape)

    def denoise(self, z_t, t, y):
        return z_t

    def decode(self, z):
        return z.mean((1, 2))[:, None, None, None].expand(-1, 3, 8, 8)


def _batches(n_batches=8, b=64, atoms=False):
    for _ in range(n_batches):
        x = {"pos": torch.zeros(b, 5, 3)} if atoms else torch.zeros(b, 3, 8, 8)
        yield x, torch.zeros(b, dtype=torch.long)


def test_latent_mse_follows_the_corruption_convention():
    cfg = config.from_dict({"data": {"image_size": 8}, "model": {"patch_size": 2, "num_registers": 16}})
    res = denoising_trajectory(IdentityDenoiser(), cfg, _batches(), [0.1, 0.5, 0.9], keep=3)
    assert res["num_inputs"] == 512
    for t in (0.1, 0.5, 0.9):
        assert res["latent_mse"][f"{t:g}"] == pytest.approx((1 - t) ** 2, rel=0.03)
    assert res["psnr_clean"] == pytest.approx(100.0)  # decode(0) is the all-zero input
    assert res["psnr"]["0.1"] < res["psnr"]["0.9"]
    assert res["strip"]["inputs"].shape == (3, 3, 8, 8)
    assert res["strip"]["0.5"].shape == (3, 3, 8, 8)


def test_atom_models_report_latent_mse_only():
    cfg = config.from_dict({"data": {"kind": "qm9", "num_classes": 1}})
    res = denoising_trajectory(IdentityDenoiser(), cfg, _batches(2, 8, atoms=True), [0.5])
    assert set(res) == {"t", "num_inputs", "latent_mse"}


def test_analyze_trajectory_writes_json_and_strip(tmp_path):
    ckpt = tmp_path / "last.pt"
    write_checkpoint(ckpt)
    out, png = tmp_path / "traj.json", tmp_path / "traj.png"
    main(["analyze", "trajectory", "--ckpt", str(ckpt), "--out", str(out), "--png", str(png),
          "--limit", "6", "--batch-size", "4", "--show", "3"])
    res = json.loads(out.read_text())
    assert res["kind"] == "trajectory" and res["scale"]["num_samples"] == 6
    m = res["metrics"]
    assert m["t"] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert set(m["psnr"]) == set(m["latent_mse"]) == {"0.1", "0.3", "0.5", "0.7", "0.9"}
    assert all(0 < v < 100 for v in m["psnr"].values()) and 0 < m["psnr_clean"] < 100
    assert png.stat().st_size > 10_000
