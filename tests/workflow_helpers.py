"""Shared by the workflow tests: a copy of the workflow in a temporary folder, tiny workflow
configs built from the embedded default, and bounded snakemake/dvc calls."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# `slurm` is the link to profiles/slurm that makes `snakemake --profile slurm` find the profile
WORKFLOW_PARTS = ("Snakefile", "workflow", "config", "profiles", "slurm", "dvc.yaml")

# a model small enough that a few training steps take seconds on one CPU core
TINY_MODEL = [
    "model.depth=1",
    "model.width=32",
    "model.heads=2",
    "model.decoder_depth=1",
    "model.decoder_width=32",
    "model.decoder_heads=2",
    "train.batch_size=8",
    "train.flow_steps_per_recon=1",
    "train.flow_chunk=1",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.ckpt_every=1",
    "train.eval_samples=8",
    "finetune.steps=2",
    "finetune.disc_warmup_steps=1",
    "finetune.log_every=1",
]


def tool(name: str) -> str:
    """A console script of this interpreter's environment (snakemake, dvc, snakefmt)."""
    path = BIN / name
    return str(path) if path.exists() else name


def copy_workflow(dst: Path) -> Path:
    """The workflow files (not results, not .snakemake) in a fresh folder; links stay links."""
    dst.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_symlink():
            os.symlink(os.readlink(src), dst / part)
        elif src.is_dir():
            shutil.copytree(src, dst / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst / part)
    return dst


def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def tiny_config(results: str = "results", steps: int = 2, **experiment) -> dict:
    """The embedded default cut to one digits experiment at toy scale (no Table 4 protocols,
    one shard, few samples), for tests that must run the pipeline in seconds."""
    cfg = copy.deepcopy(default_config())
    cfg["results"] = results
    cfg["datasets"] = {"digits": cfg["datasets"]["digits"]}
    spec = {
        "config": "config/experiments/digits.yaml",
        "dataset": "digits",
        "set": TINY_MODEL + [f"train.steps={steps}"],
        "stands_for": ["unite-b"],
        "protocols": [cfg["sampling"]["primary"]],
        "shards": 1,
        "per_class": 1,
        "recon_limit": 8,
        "analyses": [],
    }
    spec.update(experiment)
    cfg["experiments"] = {"digits": spec}
    cfg["experiment_defaults"] = {}
    cfg["sampling"]["protocols"] = {
        name: {**p, "steps": 2} if p["solver"] != "dopri5" else p
        for name, p in cfg["sampling"]["protocols"].items()
    }
    cfg["evaluation"]["pairs"] = 4
    cfg["evaluation"]["grid_per_class"] = 1
    cfg["resources"] = {"default": {"runtime": 10, "mem_mb": 2000, "threads": 1}}
    return cfg


def write_config(cfg: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_bounded(cmd: list[str], cwd: Path, timeout: int, env: dict | None = None):
    """Run a command; past `timeout` seconds it gets SIGINT (snakemake then cancels its
    jobs and cleans up), and ten seconds later SIGKILL."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [str(c) for c in cmd], cwd=cwd, env=full_env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        out += f"\n[killed after {timeout} s]"
        return subprocess.CompletedProcess(proc.args, 124, out, "")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def snakemake(args: list[str], cwd: Path, timeout: int = 300, env: dict | None = None):
    return run_bounded([tool("snakemake"), *args], cwd, timeout, env)
