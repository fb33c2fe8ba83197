"""The claims machinery without training: expansion of the claims config into experiments,
the interval and verdict rule on synthetic seeds whose answer is known, and the table and
figure assembled from hand-written metric files."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from unite.claims import stats
from unite.claims.plan import expand, load_plan
from unite.claims.report import build_report, write_report
from unite.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CLAIMS_YAML = REPO / "config" / "claims.yaml"


def claims_config() -> dict:
    return yaml.safe_load(CLAIMS_YAML.read_text())


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # library configs are named relative to the repository


# -- statistics ---------------------------------------------------------------------------------
def test_clear_effect_in_the_papers_direction_holds():
    a, b = [10.0, 10.5, 9.8], [14.0, 14.6, 13.9]
    iv = stats.welch(a, b)
    assert iv.lo > 0 and math.isclose(iv.diff, sum(b) / 3 - sum(a) / 3)
    assert stats.verdict(iv, "higher") == stats.HOLDS
    assert stats.verdict(iv, "lower") == stats.CONTRADICTED
    boot = stats.bootstrap(a, b, resamples=2000, seed=1)
    assert stats.verdict(boot, "higher") == stats.HOLDS


def test_overlapping_seeds_are_inconclusive():
    a, b = [10.0, 12.0, 9.0], [10.5, 11.0, 12.5]
    for iv in (stats.welch(a, b), stats.bootstrap(a, b, resamples=2000)):
        assert iv.lo < 0 < iv.hi
        assert stats.verdict(iv, "higher") == stats.INCONCLUSIVE
        assert stats.verdict(iv, "lower") == stats.INCONCLUSIVE


def test_welch_matches_the_textbook_interval():
    from scipy import stats as st

    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 4.0]
    va, vb = 1.6667 / 4, 1.0 / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = st.t.ppf(0.975, df) * math.sqrt(va + vb)
    iv = stats.welch(a, b)
    assert iv.lo == pytest.approx(1.5 - half, rel=1e-3)
    assert iv.hi == pytest.approx(1.5 + half, rel=1e-3)


def test_no_change_claims_use_the_equivalence_band():
    a = [20.0, 20.2, 19.8]
    near = stats.welch(a, [20.1, 20.3, 19.9])
    assert stats.verdict(near, "same", margin=2.0) == stats.HOLDS
    far = stats.welch(a, [30.0, 30.5, 29.5])
    assert stats.verdict(far, "same", margin=2.0) == stats.CONTRADICTED
    wide = stats.welch(a, [18.0, 24.0, 21.0])
    assert stats.verdict(wide, "same", margin=2.0) == stats.INCONCLUSIVE


def test_paired_interval_sees_a_shift_that_seed_spread_hides():
    a = [10.0, 20.0, 30.0]  # seeds differ a lot ...
    b = [9.0, 19.1, 28.9]  # ... but every seed drops by about 1
    assert stats.verdict(stats.welch(a, b), "lower") == stats.INCONCLUSIVE
    assert stats.verdict(stats.paired(a, b), "lower") == stats.HOLDS
    assert stats.verdict(stats.paired(a, b, "bootstrap", resamples=2000), "lower") == stats.HOLDS


def test_too_few_seeds_give_no_interval():
    iv = stats.welch([1.0], [2.0, 3.0])
    assert not iv.finite and stats.verdict(iv, "higher") == stats.INCONCLUSIVE


def test_claim_verdict_combines_rows():
    H, C, U, N = stats.HOLDS, stats.CONTRADICTED, stats.INCONCLUSIVE, stats.NOT_RUN
    assert stats.combine([H, H]) == H
    assert stats.combine([H, N]) == H
    assert stats.combine([C, U]) == C
    assert stats.combine([H, C]) == stats.MIXED
    assert stats.combine([H, U]) == U
    assert stats.combine([N, N]) == N
    assert stats.collapse_verdict(3, 3, "all") == H
    assert stats.collapse_verdict(0, 3, "all") == C
    assert stats.collapse_verdict(1, 3, "none") == U
    assert stats.collapse_verdict(0, 0, "none") == N
    assert stats.collapse_verdict(2, 3, None) == "2 of 3 collapse"


# -- expansion ----------------------------------------------------------------------------------
def test_claims_config_expands_every_claim_with_shared_default_runs():
    plan = load_plan([CLAIMS_YAML])
    assert len(plan.seeds) >= 3
    ids = [c.id for c in plan.claims]
    for claim in ("1", "2", "3", "4", "5", "6", "7", "8"):
        assert claim in ids
    # the default variant is used by most claims and trained once per seed
    users = [c.id for c in plan.claims if "default" in c.variants()]
    assert len(users) >= 5
    defaults = [n for n in plan.experiments if n.startswith("digits-default-")]
    assert defaults == [f"digits-default-s{s}" for s in plan.seeds]
    for name, spec in plan.experiments.items():
        assert spec["set"][-1].startswith("train.seed="), name
    # claim 7 reads the Table 4 protocols of the default runs only
    assert plan.experiments["digits-default-s0"]["protocols"] == [
        "heun-balanced", "dopri5-balanced", "dopri5-random"]
    assert plan.experiments["digits-separate-s0"]["protocols"] == ["heun-balanced"]
    # claim 6: only the fine-tuned variant runs the fine-tuning stage
    assert plan.experiments["digits-finetuned-s0"]["finetune"] is True
    assert not plan.experiments["digits-default-s0"]["finetune"]
    # claim 8 runs are read for their training log, not sampled
    inputs = plan.inputs()
    assert ("digits-flow0-s1", "train_metrics") in inputs
    assert not any(e == "digits-flow0-s1" and w.startswith("gen_") for e, w in inputs)


def test_variants_with_identical_settings_are_one_run():
    cfg = claims_config()
    cfg["claims"]["variants"]["shift0.5"] = {"set": ["train.time_shift=0.5"]}
    cfg["claims"]["list"].append({"id": "x", "base": "digits", "compare": [
        {"metric": "fid", "a": "shift0.5", "b": "shift0.75", "expect": "higher"}]})
    plan = expand(cfg)
    assert plan.experiment("digits", "shift0.5", 1) == "digits-default-s1"
    assert not any("shift0.5-" in n for n in plan.experiments)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["claims"]["list"][0]["compare"][0].update(b="nope"),
     "claims.list[0].compare[0].b"),
    (lambda c: c["claims"]["list"][0]["compare"][0].update(expect="lower"),
     "contradicts the paper's numbers"),
    (lambda c: c["claims"]["list"][1].update(id="1"), "appears twice"),
    (lambda c: c["claims"].update(seeds=[0, 0, 1]), "claims.seeds"),
    (lambda c: c["claims"]["verdict"].update(method="t-test"), "claims.verdict.method"),
    (lambda c: c["claims"]["variants"]["separate"].update(set=["model.weight_shareing=false"]),
     "weight_shareing"),
    (lambda c: c["experiments"].update({"digits-default-s0": {}}), "also listed"),
    (lambda c: c["claims"]["list"][0]["compare"][0].update(metric="made_up"),
     "has no default metric file"),
])
def test_config_mistakes_name_the_key(edit, message):
    cfg = copy.deepcopy(claims_config())
    edit(cfg)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        expand(cfg)


# -- assembling the table from metric files -----------------------------------------------------
def write_metric(results: Path, exp: str, source: str, metrics: dict, **scale) -> None:
    path = results / "metrics" / exp / f"{source}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "gen_images" if source.startswith("gen") else "recon_images"
    path.write_text(json.dumps({"experiment": exp, "kind": kind, "metrics": metrics,
                                "scale": {"num_samples": 200, **scale}, "flags": []}))


def small_plan_config() -> dict:
    cfg = claims_config()
    cfg["claims"]["list"] = [
        {"id": "1", "title": "sharing", "base": "digits", "compare": [
            {"metric": "fid", "a": "default", "b": "separate", "paper": [2.12, 2.60]},
            {"metric": "rfid", "a": "default", "b": "separate", "paper": [1.1, 1.3]}]},
        {"id": "3", "title": "noise", "base": "digits", "compare": [
            {"metric": "fid", "a": "default", "b": "noise-none", "paper": [2.71, 6.58]}]},
        {"id": "6", "title": "fine-tuning", "base": "digits", "compare": [
            {"metric": "rfid", "a": {"variant": "finetuned", "source": "recon_trained"},
             "b": {"variant": "finetuned", "source": "recon_finetuned"}, "paper": [1.01, 0.51]}]},
        {"id": "8", "title": "collapse", "base": "digits",
         "collapse": {"default": "none", "flow0": "all"}},
    ]
    return cfg


def test_report_from_synthetic_runs(tmp_path):
    plan = expand(small_plan_config())
    results = tmp_path / "results"
    fid = {"default": [20.0, 21.0, 20.5], "separate": [30.0, 31.5, 29.0],  # holds
           "noise-none": [15.0, 14.0, 15.5]}  # contradicted (lower, the paper says higher)
    rfid = {"default": [5.0, 6.0, 4.0], "separate": [5.5, 4.5, 6.1]}  # inconclusive
    for seed_i, seed in enumerate(plan.seeds):
        for variant, values in fid.items():
            write_metric(results, plan.experiment("digits", variant, seed),
                         "gen_heun-balanced", {"fid_digits": values[seed_i]})
        for variant, values in rfid.items():
            write_metric(results, plan.experiment("digits", variant, seed), "recon_trained",
                         {"rfid_digits": values[seed_i], "psnr": 20.0})
        ft = plan.experiment("digits", "finetuned", seed)
        write_metric(results, ft, "recon_trained", {"rfid_digits": 5.0})
        write_metric(results, ft, "recon_finetuned", {"rfid_digits": 3.0}, fine_tuned=False)
        for variant, std in (("default", 0.6), ("flow0", 0.01)):
            log = results / "checkpoints" / plan.experiment("digits", variant, seed)
            log.mkdir(parents=True, exist_ok=True)
            (log / "train_metrics.jsonl").write_text(
                json.dumps({"kind": "eval", "step": 100, "val_latent_std": 0.5}) + "\n"
                + json.dumps({"kind": "eval", "step": 600, "val_latent_std": std,
                              "val_psnr": 12.0}) + "\n")

    report = build_report(plan, results)
    assert report.verdicts == {"1": stats.INCONCLUSIVE,  # fid holds, rfid inconclusive
                               "3": stats.CONTRADICTED, "6": stats.NOT_RUN, "8": stats.HOLDS}
    by = {(r.claim.id, r.comp.metric): r for r in report.rows}
    assert by[("1", "fid")].verdict == stats.HOLDS
    assert by[("1", "rfid")].verdict == stats.INCONCLUSIVE
    assert len(by[("1", "fid")].a.values) == len(plan.seeds)
    assert "not fine-tuned" in " ".join(by[("6", "rfid")].b.skipped)
    collapse = {r.variant: r for r in report.crows}
    assert collapse["flow0"].collapsed == 3 and collapse["default"].collapsed == 0

    files = write_report(report, tmp_path / "tables", tmp_path / "claims.png")
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    md = (tmp_path / "tables" / "claims.md").read_text()
    assert "| 3 | noise | contradicted |" in md
    assert "(n=3)" in md and "Wall time" in md and "Commit" in md
    rows = list(csv.DictReader((tmp_path / "tables" / "claims.csv").open()))
    assert {r["claim"] for r in rows} == {"1", "3", "6", "8"}
    assert all(r["verdict"] for r in rows)
    fid_row = next(r for r in rows if r["claim"] == "1" and r["metric"] == "fid")
    assert fid_row["n_a"] == "3" and float(fid_row["ci_low"]) > 0
    assert "\\begin{tabular}" in (tmp_path / "tables" / "claims.tex").read_text()


def test_missing_runs_read_not_run(tmp_path):
    plan = expand(small_plan_config())
    (tmp_path / "results").mkdir()
    report = build_report(plan, tmp_path / "results")
    assert set(report.verdicts.values()) == {stats.NOT_RUN}
