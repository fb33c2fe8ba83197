"""The headline-metric chain runs for real on a toy digits experiment: the guidance sweep picks
w, the sampling job reads that w when it runs (`--cfg-from`), and the metric file and Table 1
say which w it was and how it was picked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workflow_helpers import copy_workflow, snakemake, tiny_config, write_config


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sweep_then_full_set_at_the_best_w(tmp_path):
    repo = copy_workflow(tmp_path / "repo")
    cfg = tiny_config(steps=2, cfg_sweep=True)
    cfg["sampling"]["cfg_sweep"] = {"scales": [1.0, 3.0]}
    config = write_config(cfg, repo / "config" / "run.yaml")
    gen = "results/metrics/digits/gen_heun-balanced.json"
    run = snakemake([gen, "--cores", "1", "--configfile", str(config)], cwd=repo, timeout=1500)
    assert run.returncode == 0, run.stdout[-5000:]

    sweep = json.loads((repo / "results/samples/digits/cfg_sweep.json").read_text())
    best = sweep["metrics"]["best_cfg"]
    assert best in (1.0, 3.0) and len(sweep["metrics"]["points"]) == 2
    scale = json.loads((repo / gen).read_text())["scale"]
    assert scale["cfg"] == best and scale["cfg_source"] == "sweep"
    assert scale["cfg_selection"].startswith(f"w = {best:g}: lowest fid_digits of a sweep over "
                                             "w = 1-3 (2 scales)")

    # the `tables` rule's command (the rule itself would first run every other metric)
    out = repo / "results" / "tables"
    subprocess.run([sys.executable, "-m", "unite", "tables", "--results", "results", "--out",
                    str(out), "--role", "unite-b=digits", "--primary", "heun-balanced"],
                   cwd=repo, check=True, timeout=120)
    md = (out / "table1_generation.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| UNITE-B |"))
    assert f"w = {best:g}: lowest fid_digits of a sweep" in row
