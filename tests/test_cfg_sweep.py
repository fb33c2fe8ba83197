"""The CFG sweep picks the scale with the lowest FID (stopping early only as its stated rule
says); the CLI runs it end to end on a tiny random checkpoint and writes a result in the team's
format. (Table 4 is sampled and scored by the workflow's protocols; see tests/test_tables.py.)"""

import json

import numpy as np
import pytest
import torch

from unite import checkpoint, cli, config
from unite.metrics import digits_classifier as dc
from unite.metrics import sweep
from unite.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


def fake_sampler(calls):
    def sample(w):
        calls.append(w)
        return np.zeros((4, 8, 8, 3), np.uint8), np.arange(4), 100

    return sample


def u_shaped(best_w: float):
    """FID as a function of the scale the last sample call used: a parabola around best_w."""
    state = {}

    def metrics(images, labels):
        w = state["w"]
        return {"fid": 3.0 + (w - best_w) ** 2, "is": 100 * w}

    def sample(w):
        state["w"] = w
        return np.zeros((4, 8, 8, 3), np.uint8), np.arange(4), 100

    return sample, metrics


def test_paper_scales():
    assert sweep.PAPER_SCALES[0] == 1.0 and sweep.PAPER_SCALES[-1] == 4.0 and len(sweep.PAPER_SCALES) == 16
    assert np.allclose(np.diff(sweep.PAPER_SCALES), 0.2)


def test_full_sweep_picks_lowest_fid():
    sample, metrics = u_shaped(2.6)
    out = sweep.cfg_sweep(sample, metrics, patience=0, verbose=False)
    assert out["scales_evaluated"] == list(sweep.PAPER_SCALES)
    assert out["best_cfg"] == 2.6 and out["best_fid"] == pytest.approx(3.0)
    assert not out["early_stopped"] and "full sweep" in out["stop_rule"]
    assert [p["cfg"] for p in out["points"]] == list(sweep.PAPER_SCALES)
    assert all(p["nfe"] == 100 for p in out["points"])


def test_early_stop_after_fid_rises():
    sample, metrics = u_shaped(1.6)
    out = sweep.cfg_sweep(sample, metrics, patience=2, verbose=False)
    assert out["best_cfg"] == 1.6
    assert out["scales_evaluated"] == [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]  # two worse scales, then stop
    assert out["early_stopped"] and "2 consecutive" in out["stop_rule"]
    # no early stop when the minimum is at the end of the range
    sample, metrics = u_shaped(5.0)
    out = sweep.cfg_sweep(sample, metrics, patience=2, verbose=False)
    assert out["best_cfg"] == 4.0 and not out["early_stopped"]


TINY = {
    "name": "sweep-test",
    "data": {"image_size": 16},
    "model": {"depth": 1, "width": 32, "heads": 2, "decoder_depth": 1, "decoder_width": 32,
              "decoder_heads": 2, "patch_size": 4, "num_registers": 16, "latent_dim": 4},
    "sample": {"atol": 1e-3, "rtol": 1e-2},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random checkpoint, an untrained digits classifier and its reference stats."""
    root = tmp_path_factory.mktemp("sweep")
    cfg = config.from_dict(TINY)
    torch.manual_seed(0)
    sd = build_model(cfg).state_dict()
    ckpt = root / "last.pt"
    checkpoint.save_atomic({"model": sd, "ema": sd, "step": 7, "config": config.to_dict(cfg),
                            "meta": {"fine_tuned": False}}, ckpt)
    clf, ref = root / "clf.pt", root / "ref.npz"
    torch.save({"state_dict": dc.DigitsCNN().state_dict(), "num_classes": 10, "input_size": 16,
                "image_size": 16}, clf)
    cli.main(["evaluate", "ref-stats", "--out", str(ref), "--weights", str(clf), "--quiet",
              "--device", "cpu", "--set", "data.image_size=16", "--set", "model.num_registers=16"])
    return ckpt, ref


def test_cli_sweep(setup, tmp_path):
    ckpt, ref = setup
    sweep = tmp_path / "sweep.json"
    cli.main(["evaluate", "cfg-sweep", "--ckpt", str(ckpt), "--ref", str(ref), "--out", str(sweep),
              "--scales", "1.0", "2.0", "3.0", "--per-class", "1", "--solver", "heun", "--steps", "2",
              "--patience", "0", "--quiet", "--device", "cpu"])
    res = json.loads(sweep.read_text())
    assert res["kind"] == "cfg_sweep" and res["experiment"] == "sweep-test"
    m = res["metrics"]
    assert m["fid_key"] == "fid_digits" and m["scales_evaluated"] == [1.0, 2.0, 3.0]
    fids = [p["fid_digits"] for p in m["points"]]
    assert m["best_fid"] == min(fids) and m["best_cfg"] == m["points"][int(np.argmin(fids))]["cfg"]
    # Heun with 2 steps: 4 ODE evaluations per sample, whatever the guidance scale
    assert [p["nfe"] for p in m["points"]] == [4, 4, 4]
    assert res["scale"]["train_steps"] == 7 and res["scale"]["num_samples"] == 10
    assert any("feature dimension" in f for f in res["flags"])  # 10 samples, 64-d features
