"""CKA / CKNNA / cosine behave as similarity measures should, and `analyze alignment` runs on
shared and separate tiny models."""

import json
import math

import pytest
import torch

from analysis_checkpoints import write_checkpoint
from unite.analysis.alignment import CKAStats, cknna, linear_cka, mutual_knn
from unite.cli import main


def _features(n=600, d=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    # anisotropic features, so that a non-orthogonal map really changes the geometry
    return torch.randn(n, d, generator=g) * torch.linspace(0.2, 3.0, d)


def _orthogonal(d, seed=1):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q


def _kernel_cka(x, y):
    """Reference: CKA from centred n x n Gram matrices (HSIC form)."""
    x, y = x.double(), y.double()
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, lm = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float((k * lm).sum() / (k.norm() * lm.norm()))


def test_cka_of_a_representation_with_itself_is_one():
    x = _features()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)


def test_cka_invariant_to_orthogonal_maps_isotropic_scaling_and_offsets():
    x, y = _features(seed=0), _features(seed=0) + 0.5 * _features(seed=3)
    q = _orthogonal(x.shape[1])
    assert linear_cka(x, 3.7 * x @ q + 2.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 0.01 * y @ q) == pytest.approx(linear_cka(x, y), abs=1e-9)


def test_cka_not_invariant_to_anisotropic_maps():
    x = _features()
    stretch = torch.diag(torch.logspace(-2, 1, x.shape[1]))
    assert linear_cka(x, x @ stretch) < 0.95


def test_cka_near_zero_for_independent_features():
    x, y = _features(n=3000, seed=0), _features(n=3000, seed=5)
    assert linear_cka(x, y) < 0.03


def test_streamed_cka_matches_gram_matrix_formula():
    x, y = _features(n=300, seed=0), _features(n=300, seed=0) @ _orthogonal(24) + _features(n=300, seed=9)
    stats = CKAStats()
    for i in range(0, 300, 70):  # uneven chunks, like batches
        stats.update(x[i : i + 70], y[i : i + 70])
    assert stats.cka() == pytest.approx(_kernel_cka(x, y), abs=1e-9)
    assert stats.n == 300


def test_cosine_is_one_for_identical_rows_and_minus_one_for_negated():
    x = _features(n=50)
    same, neg = CKAStats(), CKAStats()
    same.update(x, 2 * x)
    neg.update(x, -x)
    assert same.cosine() == pytest.approx(1.0)
    assert neg.cosine() == pytest.approx(-1.0)


def test_cknna_and_mutual_knn_identity_invariance_and_independence():
    x = _features(n=400)
    q = _orthogonal(x.shape[1])
    assert cknna(x, x, k=10) == pytest.approx(1.0, abs=1e-9)
    assert cknna(x, 5.0 * x @ q, k=10) == pytest.approx(1.0, abs=1e-6)
    assert mutual_knn(x, x @ q, k=10) == pytest.approx(1.0)
    y = _features(n=400, seed=11)
    assert mutual_knn(x, y, k=10) < 0.1
    assert abs(cknna(x, y, k=10)) < 0.2
    with pytest.raises(ValueError):
        cknna(x[:5], y[:5], k=5)


@pytest.mark.parametrize("sharing", [True, False])
def test_analyze_alignment_runs_on_a_tiny_model(tmp_path, sharing):
    ckpt = tmp_path / "last.pt"
    _, cfg = write_checkpoint(ckpt, [f"model.weight_sharing={sharing}"])
    out, png = tmp_path / "align.json", tmp_path / "align.png"
    main(["analyze", "alignment", "--ckpt", str(ckpt), "--out", str(out), "--png", str(png),
          "--t", "0.3", "0.8", "--limit", "12", "--batch-size", "5", "--knn-rows", "64"])
    res = json.loads(out.read_text())
    assert res["kind"] == "alignment" and res["experiment"] == "tiny-analysis"
    assert res["scale"]["weight_sharing"] is sharing and res["scale"]["num_samples"] == 12
    m = res["metrics"]
    assert m["layers"] == ["block1", "block2", "latent"]
    assert set(m["cka"]) == {"0.3", "0.8"}
    assert m["num_rows"] == 12 * cfg.model.num_registers
    for key in ("cka", "cknna", "mutual_knn", "cosine"):
        for values in m[key].values():
            assert len(values) == 3 and all(v is not None and math.isfinite(v) for v in values)
    for values in m["cka"].values():
        assert all(0.0 <= v <= 1.0 + 1e-9 for v in values)
    assert any("only 12 inputs" in f for f in res["flags"])
    assert png.stat().st_size > 10_000


def test_analyze_alignment_rejects_bad_noise_level(tmp_path, capsys):
    ckpt = tmp_path / "last.pt"
    write_checkpoint(ckpt)
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "alignment", "--ckpt", str(ckpt), "--out", str(tmp_path / "a.json"),
              "--t", "1.5"])
    assert exc.value.code == 2
    assert "error: --t values must lie in [0, 1]" in capsys.readouterr().err
