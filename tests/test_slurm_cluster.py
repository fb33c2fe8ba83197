"""The SLURM profile works on a real (one-node, localhost) SLURM cluster, called as users type
it (`snakemake --profile slurm ...`, found through the repository's `slurm` link to
profiles/slurm): Snakemake submits a slice of the embedded workflow (prepare the digits data,
train a few steps) with sbatch, reads job states with squeue (no accounting storage, as on
many small clusters), and the outputs arrive. The cluster is Debian's slurmctld/slurmd/munge
started by tests/slurm_cluster.sh and stopped by PID afterwards; every wait is bounded."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest
import torch

from workflow_helpers import REPO, copy_workflow, snakemake, tiny_config, write_config

HELPER = REPO / "tests" / "slurm_cluster.sh"
DAEMONS = ("slurmctld", "slurmd", "sbatch", "squeue", "munged")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def helper(*args: str, env: dict, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HELPER), *args], env=env, text=True, timeout=timeout,
                          capture_output=True)


@pytest.fixture
def slurm_cluster(tmp_path):
    """A running one-node cluster; yields the environment that points clients at it."""
    have_slurm = all(shutil.which(d) for d in DAEMONS)
    if not have_slurm and (os.geteuid() != 0 or not shutil.which("apt-get")):
        pytest.skip("SLURM is not installed and cannot be installed here (needs root + apt-get)")
    env = {**os.environ, "SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT": str(free_port())}
    install = helper("install", env=env, timeout=1500)
    assert install.returncode == 0, install.stderr
    state = tmp_path / "cluster"
    started = helper("start", str(state), env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        env["SLURM_CONF"] = str(state / "slurm.conf")
        env["PATH"] = f"{state / 'bin'}{os.pathsep}{env['PATH']}"
        yield env
    finally:
        stopped = helper("stop", str(state), env=env, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert not (state / "pids").exists()


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_workflow_slice_runs_through_the_slurm_profile(slurm_cluster, tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = write_config(tiny_config(steps=2), work / "slurm-slice.yaml")
    ckpt = "results/checkpoints/digits/trained.pt"
    run = snakemake(
        ["--profile", "slurm", "--configfile", cfg.name, "--jobs", "2",
         "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5",
         "--retries", "0", ckpt],
        cwd=work, timeout=900, env=slurm_cluster,
    )
    assert run.returncode == 0, run.stdout[-6000:]
    assert "Using profile slurm for" in run.stdout

    # the jobs went through SLURM (sbatch logs per rule), not the local executor
    for rule in ("prepare", "train"):
        logs = list((work / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))
        assert logs, f"no SLURM log for rule {rule}:\n{run.stdout[-3000:]}"
    states = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%T"],
                            env=slurm_cluster, text=True, capture_output=True, timeout=30)
    assert states.stdout.split().count("COMPLETED") >= 2, states.stdout

    # and produced what the rules promise
    assert (work / "results" / "data" / "digits.npz").is_file()
    saved = torch.load(work / ckpt, map_location="cpu", weights_only=False)
    assert saved["step"] == 2
    assert saved["config"]["name"] == "digits"
    assert (work / "results" / "checkpoints" / "digits" / "train_metrics.jsonl").stat().st_size > 0
