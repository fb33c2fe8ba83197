"""`python -m unite train` end to end on a tiny digits config: the run folder's three outputs,
a loadable checkpoint, and SIGTERM -> checkpoint + exit code 143 + resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from training_helpers import TINY
from unite import checkpoint

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "config" / "experiments" / "digits.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cmd(out, *extra):
    sets = []
    for s in TINY + list(extra):
        sets += ["--set", s]
    return [sys.executable, "-m", "unite", "train", "--config", str(DIGITS), "--out", str(out),
            "--no-progress", "--threads", "1", *sets]


def test_train_cli_writes_config_metrics_and_checkpoint(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(_cmd(out, "train.steps=3", "train.ckpt_every=2"), cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["step"] == 3
    assert summary["val_psnr"] > 0  # held-out EMA reconstructions on the digits val split

    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["train"]["steps"] == 3 and cfg["data"]["image_size"] == 8
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3]
    for key in ("loss", "recon", "l1", "flow", "lr", "grad_norm", "samples_per_s"):
        assert key in train_rows[0]
    assert any(r["kind"] == "eval" and "val_psnr" in r for r in rows)

    model, cfg2, meta = checkpoint.load_model(out / "checkpoints" / "last.pt")
    assert meta["step"] == 3 and meta["fine_tuned"] is False
    assert not model.training and cfg2.train.steps == 3
    assert not list((out / "checkpoints").glob("*.tmp"))  # atomic writes leave no temp files


@pytest.mark.slow  # two CLI launches (torch import ~10 s each on a busy 2-core box)
def test_sigterm_saves_checkpoint_exits_143_and_rerun_resumes(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(out, "train.steps=100000", "train.ckpt_every=0"), cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    status = json.loads(stdout.strip().splitlines()[-1])
    assert status["status"] == "interrupted" and status["signal"] == "SIGTERM"
    saved = checkpoint.read(out / "checkpoints" / "last.pt")
    assert saved["step"] == status["step"] >= 2

    # rerun with a horizon just past the interruption: resumes, finishes, exits 0
    stop_at = status["step"] + 1
    res = subprocess.run(_cmd(out, f"train.steps={stop_at}", "train.ckpt_every=0"), cwd=ROOT,
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == list(range(1, stop_at + 1))
