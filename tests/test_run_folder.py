"""The run folder belongs to one trainer and always describes its checkpoint: a second trainer
is refused, a killed one never blocks the next, a shorter train.steps than the checkpoint holds
is refused without touching RUN/config.yaml, a read-only folder stops the run at its start, and
user mistakes (bad values, broken YAML, weights that do not fit their config) are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml

from cli_helpers import user_error as one_line_error
from training_helpers import SyntheticImages, tiny_config
from unite import checkpoint, cli
from unite import config as config_mod
from unite.errors import UserError
from unite.models import build_model
from unite.training import train

REPO = Path(__file__).resolve().parents[1]
TINY_CLI = ["model.depth=1", "model.width=32", "model.heads=2", "model.decoder_depth=1",
            "model.decoder_width=32", "model.decoder_heads=2", "train.batch_size=8",
            "train.flow_steps_per_recon=1", "train.flow_chunk=1", "train.warmup_steps=1",
            "train.log_every=1", "train.eval_samples=8"]


def trainer(run: Path, steps: int, *extra: str) -> subprocess.Popen:
    sets = [a for s in [*TINY_CLI, f"train.steps={steps}", *extra] for a in ("--set", s)]
    cmd = [sys.executable, "-m", "unite", "train", "--config", "config/experiments/digits.yaml",
           *sets, "--out", str(run), "--device", "cpu", "--threads", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_a_second_trainer_on_the_same_run_folder_is_refused(tmp_path):
    run = tmp_path / "run"
    first = trainer(run, 100_000, "train.ckpt_every=0")  # runs until killed, no checkpoint
    try:
        deadline = time.monotonic() + 180
        while not (run / "metrics.jsonl").exists():  # training loop running, lock held
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "first trainer did not start"
            time.sleep(0.5)
        assert f"pid {first.pid} " in (run / ".lock").read_text()

        second = trainer(run, 2)
        out, err = second.communicate(timeout=180)
        assert second.returncode == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"run folder {run} is in use by another trainer (pid {first.pid} on" in err
    finally:
        first.send_signal(signal.SIGKILL)  # a killed trainer: its lock must not block
        first.communicate()
    third = trainer(run, 2)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, err
    assert checkpoint.read(run / "checkpoints" / "last.pt")["step"] == 2


def _data():
    return SyntheticImages(16), SyntheticImages(8, seed=1)


def test_a_shorter_rerun_is_refused_and_config_yaml_follows_the_checkpoint(tmp_path, single_thread):
    def go(steps, *extra):
        return train(tiny_config(f"train.steps={steps}", "train.ckpt_every=100", *extra), tmp_path,
                     device="cpu", progress=False, datasets=_data())

    assert go(2)["status"] == "done"
    written = (tmp_path / "config.yaml").read_bytes()
    assert yaml.safe_load(written)["train"]["steps"] == 2

    with pytest.raises(UserError, match=r"already holds 2 trained steps, more than train.steps=1"):
        go(1)
    assert (tmp_path / "config.yaml").read_bytes() == written

    assert go(2, "train.log_every=5")["status"] == "done"  # finished: nothing to do
    assert (tmp_path / "config.yaml").read_bytes() == written  # still the checkpoint's config

    assert go(3)["step"] == 3  # a longer run extends the finished one
    saved = checkpoint.read(tmp_path / "checkpoints" / "last.pt")
    assert saved["step"] == 3
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == saved["config"]


def test_a_read_only_run_folder_stops_training_at_the_start(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if Path(dir).is_relative_to(run):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    err = one_line_error(["train", "--out", str(run), "--device", "cpu", "--no-progress"], capsys)
    assert f"output folder {run}" in err and "not writable: Permission denied" in err
    assert list(run.iterdir()) == []  # nothing was trained, nothing written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o555)
    try:
        err = one_line_error(["train", "--out", str(run), "--device", "cpu"], capsys)
    finally:
        run.chmod(0o755)
    assert "not writable" in err


@pytest.mark.parametrize("setting, message", [
    ("train.log_every=0", "config key 'train.log_every': must be > 0, got 0"),
    ("train.seed=-1", "config key 'train.seed': must be >= 0, got -1"),
    ("train.lr=-1", "config key 'train.lr': must be > 0, got -1.0"),
    ("data.num_workers=-1", "config key 'data.num_workers': must be >= 0, got -1"),
])
def test_bad_values_are_one_line(setting, message, tmp_path, capsys):
    err = one_line_error(["train", "--out", str(tmp_path / "run"), "--set", setting], capsys)
    assert message in err
    assert not (tmp_path / "run").exists()


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, capsys):
    base = tmp_path / "base.yaml"
    base.write_text("train:\n  steps: 10\n  lr: [1e-4, 2e-4\n")
    child = tmp_path / "child.yaml"
    child.write_text("inherit: base.yaml\ntrain:\n  steps: 5\n")
    err = one_line_error(["train", "--config", str(child), "--out", str(tmp_path / "r")], capsys)
    assert f"{base} line 4, column 1: invalid YAML" in err


def test_a_checkpoint_whose_config_does_not_fit_its_weights_is_one_line(tmp_path, capsys):
    cfg = tiny_config()
    state = build_model(cfg).state_dict()
    other = config_mod.to_dict(tiny_config("model.depth=3"))
    path = tmp_path / "edited.pt"
    torch.save({"model": state, "ema": state, "config": other, "step": 1}, path)
    err = one_line_error(["sample", "--ckpt", str(path), "--out", str(tmp_path / "s.npz"),
                          "--num-samples", "2", "--device", "cpu"], capsys)
    assert f"{path}: its EMA weights do not fit the model its config describes" in err
    assert "Missing key(s)" in err


def test_check_config_locates_a_broken_workflow_overlay(tmp_path, capsys):
    """Snakemake's own message for a broken --configfile names no file or line; this does."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("experiments:\n  digits:\n    per_class: [1, 2\n  qm9: {}\n")
    err = one_line_error(["check-config", str(REPO / "config/config.yaml"), str(overlay)], capsys)
    assert f"{overlay} line 4, column 6: invalid YAML" in err
    cli.main(["check-config", str(REPO / "config/experiments/unite-b-flow1.yaml")])
    assert "unite-b-flow1.yaml: ok, library config, validated" in capsys.readouterr().out


def test_the_lock_is_exclusive_and_released(tmp_path):
    from unite.runlock import RunLock

    first = RunLock(tmp_path).acquire()
    with pytest.raises(UserError, match=f"pid {os.getpid()} on"):
        RunLock(tmp_path).acquire()
    first.release()
    with RunLock(tmp_path):  # free again
        pass
