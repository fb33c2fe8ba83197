"""Warm-up + cosine counted in optimizer steps: gradient accumulation does not stretch it
(the authors' code counted micro-batches, REFERENCE section 8)."""

import json
import math

import pytest

from training_helpers import SyntheticImages, one_thread, tiny_config
from unite.optim import WarmupCosine
from unite.training import train


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def test_schedule_shape():
    s = WarmupCosine(lr=1e-3, min_lr=1e-5, warmup=10, total=110)
    assert s.lr_at(0) == pytest.approx(1e-4)
    assert s.lr_at(9) == pytest.approx(1e-3)
    assert s.lr_at(60) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert s.lr_at(110) == pytest.approx(1e-5)
    lrs = [s.lr_at(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_logged_lr_follows_optimizer_steps_with_grad_accum(tmp_path, grad_accum):
    cfg = tiny_config("train.steps=4", "train.warmup_steps=2", "train.lr=1e-3",
                      "train.min_lr=0", f"train.grad_accum={grad_accum}", "train.ckpt_every=0",
                      "train.flow_steps_per_recon=1")
    data = SyntheticImages(16)
    train(cfg, tmp_path, device="cpu", progress=False, datasets=(data, None))
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if r["kind"] == "train"]
    # optimizer steps 0..3: warm-up 1/2, 2/2, then cosine at progress 0 and 1/2 of 2 steps
    expected = [0.5e-3, 1e-3, 1e-3, 0.5e-3 * (1 + math.cos(math.pi * 0.5))]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert lrs == pytest.approx(expected)
