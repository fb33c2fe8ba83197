"""The workflow is clean under `snakemake --lint` and formatted as `snakefmt` wants."""

from __future__ import annotations

from workflow_helpers import REPO, run_bounded, snakemake, tool


def test_snakemake_lint_finds_nothing():
    run = snakemake(["--lint"], cwd=REPO, timeout=180)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in run.stdout


def test_snakefmt_would_change_nothing():
    run = run_bounded([tool("snakefmt"), "--check", "Snakefile", "workflow"], REPO, 120)
    assert run.returncode == 0, run.stdout[-4000:]
