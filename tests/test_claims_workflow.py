"""The claims run through Snakemake: the dry run of config/claims.yaml plans every claim's
variants x seeds through the ordinary rules (fast), and the tiny overlay runs end to end into
a verdict table with a verdict per claim and n per row (slow)."""

from __future__ import annotations

import csv

import pytest
import yaml

from test_workflow_dryrun import planned_jobs
from unite.claims.plan import load_plan
from workflow_helpers import REPO, copy_workflow, snakemake

CLAIMS = REPO / "config" / "claims.yaml"
TINY = REPO / "config" / "claims-tiny.yaml"


@pytest.mark.timeout(600)
def test_dry_run_plans_every_claim_run_once(monkeypatch):
    monkeypatch.chdir(REPO)
    plan = load_plan([CLAIMS])
    run = snakemake(["-n", "claims", "--configfile", "config/claims.yaml"], cwd=REPO,
                    timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    jobs = planned_jobs(run.stdout)
    trained = sorted(w["exp"] for w in jobs["train"])
    assert trained == sorted(plan.experiments)  # one training per run, none twice
    assert len(jobs["claims"]) == 1
    # the seeds: every variant a claim uses, for every seed
    for claim in plan.claims:
        for variant in claim.variants():
            for seed in plan.seeds:
                assert plan.experiment(claim.base, variant, seed) in trained
    # Table 4 protocols only on the default runs; claim-8 runs are trained, not sampled
    gathered = {(w["exp"], w["protocol"]) for w in jobs["gather"]}
    for seed in plan.seeds:
        assert (f"digits-default-s{seed}", "dopri5-random") in gathered
        assert (f"digits-separate-s{seed}", "dopri5-random") not in gathered
        assert not any(e == f"digits-flow0-s{seed}" for e, _ in gathered)
    # fine-tuning only where claim 6 reads it
    assert {w["exp"] for w in jobs["finetune"]} == {
        f"digits-finetuned-s{s}" for s in plan.seeds}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_tiny_claims_run_gives_a_verdict_per_claim(tmp_path):
    repo = copy_workflow(tmp_path / "repo")
    run = snakemake(["--profile", "profiles/local", "--cores", "2", "claims", "--configfile",
                     "config/claims.yaml", "config/claims-tiny.yaml"], cwd=repo, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:]
    results = repo / yaml.safe_load(TINY.read_text())["results"]
    md = (results / "tables" / "claims.md").read_text()
    rows = list(csv.DictReader((results / "tables" / "claims.csv").open()))
    allowed = {"holds", "contradicted", "mixed", "inconclusive at this scale", "measured"}
    verdicts = {r["claim"]: r["claim_verdict"] for r in rows}
    assert set(verdicts) == {"1", "8"}
    assert set(verdicts.values()) <= allowed, verdicts
    for r in rows:
        assert r["verdict"], r
        assert r["n_a"] == "2", r  # two seeds on every row
        if r["kind"] == "compare":
            assert r["n_b"] == "2" and r["ci_low"] and r["ci_high"], r
    assert "(n=2)" in md and "Wall time: " in md and "unknown (no" not in md
    assert (results / "figures" / "claims.png").stat().st_size > 10_000
    # the default variant is one run per seed, shared by both claims
    assert sorted(p.name for p in (results / "checkpoints").iterdir()) == sorted(
        f"digits-{v}-s{s}" for v in ("default", "separate", "flow0") for s in (0, 1))
