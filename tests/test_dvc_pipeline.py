"""DVC mirrors the pipeline: `dvc repro` runs it, a second `dvc repro` does nothing, and
push/pull through a local remote round-trips; after `dvc pull` in a fresh clone,
`snakemake --touch` makes Snakemake's DAG up to date as well."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml

from workflow_helpers import BIN, REPO, copy_workflow, run_bounded, tiny_config, tool, write_config

STAGES = ("prepare", "reference", "train", "finetune", "sample", "reconstruct", "evaluate",
          "analyze", "figures", "tables")
ENV = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "GIT_AUTHOR_NAME": "t",
       "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.org"}


def sh(cmd: list, cwd: Path, timeout: int = 120):
    run = run_bounded(cmd, cwd, timeout, ENV)
    assert run.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{run.stdout[-5000:]}"
    return run.stdout


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_stage_keeps_its_outputs_and_follows_its_plan():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert spec["vars"] == ["config/config.yaml:results"]
    assert tuple(spec["stages"]) == ("plan", *STAGES)
    for name in STAGES:
        stage = spec["stages"][name]
        assert stage["cmd"].startswith(f"snakemake --profile profiles/local stage_{name}"), name
        assert f"${{results}}/plan/{name}.txt" in stage["deps"], name
        for out in stage["outs"]:
            ((path, opts),) = out.items()
            assert path.startswith("${results}/") and opts["persist"] is True, name
    listed = sh([tool("dvc"), "stage", "list"], REPO)
    for name in STAGES:
        assert name in listed


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_repro_twice_is_a_noop_and_push_pull_round_trips(tmp_path):
    repo = copy_workflow(tmp_path / "repo")
    (repo / ".dvcignore").write_text((REPO / ".dvcignore").read_text())
    # the stages depend on the code too (the installed package runs from the checkout)
    shutil.copytree(REPO / "src", repo / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    write_config(tiny_config(steps=2), repo / "config" / "config.yaml")
    sh(["git", "init", "-q"], repo)
    sh([tool("dvc"), "init", "-q"], repo)
    sh([tool("dvc"), "config", "core.analytics", "false"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "workflow"], repo)

    first = sh([tool("dvc"), "repro"], repo, timeout=1200)
    for name in ("plan", *STAGES):
        assert f"Running stage '{name}'" in first
    tables = repo / "results" / "tables"
    assert (tables / "table1_generation.md").is_file()
    assert "digits" in (tables / "table1_generation.md").read_text()

    second = sh([tool("dvc"), "repro"], repo, timeout=600)
    assert "Running stage" not in second, second
    assert "up to date" in sh([tool("dvc"), "status"], repo)

    remote = tmp_path / "remote"
    sh([tool("dvc"), "remote", "add", "-d", "local", str(remote)], repo)
    sh([tool("dvc"), "push"], repo, timeout=300)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "results"], repo)
    before = digests(repo / "results" / "tables")

    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "results" / "tables").exists()
    sh([tool("dvc"), "pull"], clone, timeout=300)
    assert digests(clone / "results" / "tables") == before
    assert (clone / "results" / "checkpoints" / "digits" / "trained.pt").is_file()
    assert "up to date" in sh([tool("dvc"), "status"], clone)

    # Snakemake sees checkout timestamps; --touch makes the pulled files count as current
    sh([tool("snakemake"), "--profile", "profiles/local", "--touch"], clone, timeout=300)
    plan = sh([tool("snakemake"), "--profile", "profiles/local", "-n"], clone, timeout=300)
    assert "Nothing to be done" in plan, plan[-3000:]
