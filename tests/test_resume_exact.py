"""Preemption and exact resume: N steps, SIGTERM, resume for N more == 2N uninterrupted."""

import json
import os
import signal

import pytest
import torch

from training_helpers import SyntheticImages, one_thread, tiny_config
from unite import checkpoint
from unite.training import train


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


STEPS = 6


def _cfg():
    # grad_accum, interp recon noise and label dropout exercise every random stream
    return tiny_config(f"train.steps={STEPS}", "train.grad_accum=2", "train.ckpt_every=100",
                       "train.recon_noise.mode=interp", "train.label_dropout=0.5",
                       "train.eval_every=2")


def _data():
    return SyntheticImages(20), SyntheticImages(8, seed=1)  # 20 // 4 = 5 micro-batches per epoch


def _sigterm_at(step_to_stop):
    def hook(step):
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    full = train(_cfg(), tmp_path / "full", device="cpu", progress=False, datasets=_data())
    assert full["status"] == "done"

    run = tmp_path / "resumed"
    first = train(_cfg(), run, device="cpu", progress=False, datasets=_data(),
                  after_step=_sigterm_at(STEPS // 2))
    assert first == {"status": "interrupted", "step": STEPS // 2, "signal": int(signal.SIGTERM)}
    assert checkpoint.read(run / "checkpoints" / "last.pt")["step"] == STEPS // 2
    second = train(_cfg(), run, device="cpu", progress=False, datasets=_data())
    assert second["status"] == "done" and second["step"] == STEPS

    a = checkpoint.read(tmp_path / "full" / "checkpoints" / "last.pt")
    b = checkpoint.read(run / "checkpoints" / "last.pt")
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    for oa, ob in zip(a["optimizers"], b["optimizers"]):
        for pa, pb in zip(oa["state"].values(), ob["state"].values()):
            for k in pa:
                if torch.is_tensor(pa[k]):
                    assert torch.equal(pa[k], pb[k])

    # metrics: every step exactly once, same values as the uninterrupted run
    def rows(path):
        return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]

    full_rows, resumed_rows = rows(tmp_path / "full"), rows(run)
    key = [(r["kind"], r["step"]) for r in resumed_rows]
    assert key == [(r["kind"], r["step"]) for r in full_rows]
    for r, s in zip(full_rows, resumed_rows):
        assert r.get("loss") == s.get("loss") and r.get("val_psnr") == s.get("val_psnr")


def test_resume_drops_metric_lines_past_the_checkpoint(tmp_path):
    cfg = tiny_config("train.steps=4", "train.ckpt_every=2")
    train(cfg, tmp_path, device="cpu", progress=False, datasets=_data(),
          after_step=_sigterm_at(3))  # checkpoint at 2 (ckpt_every) and again at 3 (signal)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    # pretend the run died after logging step 3 but before saving it: restore the step-2 file
    saved = checkpoint.read(ckpt)
    assert saved["step"] == 3
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "train", "step": 99}) + "\n{truncated")
    train(cfg, tmp_path, device="cpu", progress=False, datasets=_data())
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == [1, 2, 3, 4]


def test_finished_run_is_not_retrained(tmp_path):
    cfg = tiny_config("train.steps=2")
    train(cfg, tmp_path, device="cpu", progress=False, datasets=_data())
    before = (tmp_path / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = train(cfg, tmp_path, device="cpu", progress=False, datasets=_data())
    assert again["status"] == "done"
    assert (tmp_path / "checkpoints" / "last.pt").stat().st_mtime_ns == before
