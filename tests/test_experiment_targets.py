"""One experiment, one command: a target per experiment (and per stage of it) plans only that
experiment's jobs, and editing one experiment's library config reruns that experiment only.

The rerun test needs a finished pipeline without paying for one: it creates every output
file the dry run lists, then `snakemake --touch --forceall` orders their timestamps and
records Snakemake's metadata (params, code), as a real run would."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_workflow_dryrun import planned_jobs
from unite import config as config_mod
from unite import tables
from unite.errors import UserError
from unite.targets import experiment_targets, rule_name
from workflow_helpers import REPO, copy_workflow, default_config, snakemake, write_config

# jobs an experiment's target may plan besides its own: its data and reference statistics
SHARED = {"prepare", "digits_classifier", "reference_stats"}


# -- names ----------------------------------------------------------------------------------
def test_rule_names_are_identifiers_named_after_the_experiment():
    assert rule_name("unite-b-separate") == "unite_b_separate"
    assert rule_name("unite-b-noise0.0") == "unite_b_noise0_0"
    assert rule_name("3d-molecules") == "exp_3d_molecules"
    assert rule_name("if") == "exp_if"
    for name in ("unite-b-shift0.75", "3d", "a.b-c_d", "lambda"):
        assert rule_name(name).isidentifier()


def stages(exp: str) -> dict:
    return {"train": [f"ckpt/{exp}.pt"], "finetune": [], "sample": [f"samples/{exp}.npz"],
            "evaluate": [f"metrics/{exp}.json"], "tables": [f"tables/experiments/{exp}.md"]}


def test_each_experiment_gets_a_target_and_one_per_nonempty_stage():
    targets = {t.rule: t for t in experiment_targets({"unite-b-separate":
                                                      stages("unite-b-separate")}, {"all"})}
    assert set(targets) == {"unite_b_separate", "unite_b_separate_train",
                            "unite_b_separate_sample", "unite_b_separate_evaluate",
                            "unite_b_separate_tables"}  # no finetune target: nothing to make
    whole = targets["unite_b_separate"]
    assert whole.files == ("ckpt/unite-b-separate.pt", "samples/unite-b-separate.npz",
                           "metrics/unite-b-separate.json",
                           "tables/experiments/unite-b-separate.md")
    assert targets["unite_b_separate_train"].files == ("ckpt/unite-b-separate.pt",)
    assert all(t.doc.startswith("experiment unite-b-separate: ") and "\n" not in t.doc
               for t in targets.values())


@pytest.mark.parametrize("names, taken, clash", [
    (["a-b", "a.b"], set(), "'a-b' and 'a.b' both give the target 'a_b'"),
    (["digits", "digits-train"], set(), "both give the target 'digits_train'"),
    (["train"], {"train", "all"}, "'train' is already a rule"),
])
def test_a_target_name_clash_is_refused_with_both_names(names, taken, clash):
    with pytest.raises(UserError, match=re.escape(clash)):
        experiment_targets({n: stages(n) for n in names}, taken)


def test_the_workflow_refuses_an_experiment_named_like_a_rule(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = default_config()
    cfg["experiments"] = {"tables": cfg["experiments"]["qm9"]}
    write_config(cfg, work / "clash.yaml")
    run = snakemake(["-n", "--configfile", "clash.yaml"], cwd=work)
    assert run.returncode != 0
    assert "its target 'tables' is already a rule of the workflow" in run.stdout


# -- what a run depends on ------------------------------------------------------------------
def test_config_files_follow_inheritance():
    files = config_mod.config_files(REPO / "config/experiments/unite-b-separate.yaml")
    assert [f.name for f in files] == ["unite-b-separate.yaml", "unite-b-120ep.yaml",
                                       "unite-b.yaml"]


def test_run_digest_changes_with_a_setting_but_not_with_a_longer_run():
    path = REPO / "config/experiments/qm9-tiny.yaml"
    base = config_mod.run_digest(path, ["train.steps=600"])
    assert config_mod.run_digest(path, ["train.steps=900", "train.log_every=7"]) == base
    assert config_mod.run_digest(path, ["train.steps=600", "train.lr=0.123"]) != base
    assert config_mod.run_digest(path, ["sample.cfg=2.0", "finetune.epochs=3"]) == \
        config_mod.run_digest(path)


# -- its rows -------------------------------------------------------------------------------
def write_metric(root: Path, experiment: str, source: str, kind: str, metrics: dict) -> None:
    path = root / "metrics" / experiment / f"{source}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"experiment": experiment, "kind": kind, "metrics": metrics,
                                "scale": {"dataset": "qm9", "num_samples": 200}}))


def tables_cli(*argv: str) -> None:
    parser = argparse.ArgumentParser()
    tables.add_arguments(parser)
    tables.run(parser.parse_args(argv))


def test_the_rows_file_holds_the_experiments_rows_and_metric_files(tmp_path):
    root = tmp_path / "results"
    write_metric(root, "qm9", "recon_trained", "recon_molecules", {"match_rate": 0.5, "rmsd": 0.2})
    write_metric(root, "perov5", "recon_trained", "recon_crystals", {"match_rate": 0.25})
    out = root / "tables"
    rows = out / "experiments" / "qm9.md"
    tables_cli("--results", str(root), "--out", str(out), "--role", "unite-s-qm9=qm9",
               "--role", "unite-s-mp20=perov5", "--experiment", "qm9", "--rows", str(rows))
    text = rows.read_text()
    assert "Table 3" in text and "| UNITE-S | qm9 |" in text and "| 50.00 |" in text
    assert "Table 5" not in text and "perov5" not in text  # the other experiment's row
    assert "metrics/qm9/recon_trained.json" in text
    assert "UNITE-S (single-stage)" in (out / "table5_mp20.md").read_text()  # all tables too
    lone = tables.experiment_rows({}, {}, "heun-balanced", "custom")
    assert "fills no row" in lone and "none yet" in lone
    with pytest.raises(UserError, match="--experiment and --rows go together"):
        tables_cli("--results", str(root), "--out", str(out), "--experiment", "qm9")


def test_table_writers_take_turns(tmp_path):
    """A second writer of the same tables folder waits until the first one is done."""
    out = tmp_path / "tables"
    waiter = [sys.executable, "-c",
              "import sys; from pathlib import Path; from unite.tables import tables_lock\n"
              "with tables_lock(Path(sys.argv[1])): print('in')", str(out)]
    with tables.tables_lock(out):
        second = subprocess.Popen(waiter, stdout=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            second.communicate(timeout=2)
    assert second.communicate(timeout=30)[0].strip() == "in"


# -- dry runs -------------------------------------------------------------------------------
def dry(work: Path, *args: str) -> dict:
    run = snakemake(["-n", *args], cwd=work, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    return planned_jobs(run.stdout)


def foreign(jobs: dict, experiments: set, target: str) -> list:
    """Planned jobs that belong to another experiment or to no experiment of `experiments`."""
    bad = []
    for rule, wildcards in jobs.items():
        for wc in wildcards:
            if "exp" in wc:
                if wc["exp"] not in experiments:
                    bad.append((rule, wc))
            elif rule not in SHARED | {target, "all", "tables"} and not rule.startswith("fetch_"):
                bad.append((rule, wc))
    return bad


def test_one_experiments_target_plans_only_its_jobs(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    jobs = dry(work, "qm9")
    assert not foreign(jobs, {"qm9"}, "qm9"), foreign(jobs, {"qm9"}, "qm9")
    assert jobs["train"] == [{"exp": "qm9"}] and jobs["evaluate_samples"]
    assert jobs["experiment_tables"] == [{"exp": "qm9"}] and "tables" not in jobs
    assert [w["dataset"] for w in jobs["prepare"]] == ["qm9"]
    # the image experiment brings its dataset's reference jobs, nothing of qm9/perov5
    jobs = dry(work, "digits")
    assert not foreign(jobs, {"digits"}, "digits")
    assert jobs["reference_stats"] == [{"dataset": "digits"}] and jobs["cfg_sweep"]
    # a stage target stops at its stage
    jobs = dry(work, "digits_train")
    assert set(jobs) == {"prepare", "train", "digits_train"}


@pytest.mark.timeout(300)
def test_paper_experiment_target_plans_only_that_ablation():
    jobs = dry(REPO, "unite_b_separate", "--configfile", "config/paper.yaml")
    assert not foreign(jobs, {"unite-b-separate"}, "unite_b_separate")
    assert len(jobs["sample_shard"]) == 8 and jobs["analyze"]
    # paper.yaml fine-tunes only the runs whose tables need it (Tables 1/2), not this ablation
    assert not jobs["finetune"]
    assert {w["dataset"] for w in jobs["prepare"] + jobs["reference_stats"]} == {"imagenet"}


def finish_everything(work: Path, args: list[str], targets: list[str]) -> None:
    """Every output present and recorded as if the pipeline had run (no job runs)."""
    summary = snakemake(["--summary", *targets, *args], cwd=work)
    assert summary.returncode == 0, summary.stdout[-3000:]
    rows = [line.split("\t") for line in summary.stdout.splitlines()]
    files = [r[0] for r in rows if len(r) == 6 and r[0] != "output_file"]
    assert len(files) > 50
    for f in files:
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        (work / f).touch()
    touch = snakemake(["--touch", "--forceall", "--cores", "1", *targets, *args], cwd=work)
    assert touch.returncode == 0, touch.stdout[-3000:]
    assert "Nothing to be done" in snakemake(["-n", *targets, *args], cwd=work).stdout


def rerun_experiments(work: Path, args: list[str], target: str = "all") -> tuple[set, dict]:
    jobs = dry(work, target, *args)  # targets first: --configfile takes several
    exps = {wc["exp"] for wcs in jobs.values() for wc in wcs if "exp" in wc}
    return exps, jobs


def halve_lr(path: Path) -> None:
    """A real edit of a library config: its learning rate."""
    data = yaml.safe_load(path.read_text())
    data["train"]["lr"] = float(data["train"]["lr"]) / 2
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.timeout(300)
def test_editing_one_experiments_config_reruns_that_experiment_only(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    # qm9, perov5, and an experiment whose library config inherits perov5's
    (work / "config/experiments/perov-child.yaml").write_text(
        "inherit: perov-tiny.yaml\nname: perov-child\ntrain:\n  lr: 0.0002\n")
    cfg = default_config()
    del cfg["experiments"]["digits"]  # fewer jobs to touch; two other experiments remain
    cfg["experiments"]["perov5-child"] = {**cfg["experiments"]["perov5"],
                                          "config": "config/experiments/perov-child.yaml",
                                          "stands_for": []}
    write_config(cfg, work / "three.yaml")
    args = ["--configfile", "three.yaml"]
    targets = ["all"] + [rule_name(e) for e in cfg["experiments"]]
    finish_everything(work, args, targets)

    # 1. the child's own file: only the child reruns, then the tables
    halve_lr(work / "config/experiments/perov-child.yaml")
    exps, jobs = rerun_experiments(work, args)
    assert exps == {"perov5-child"}, exps
    assert {"train", "sample_shard", "evaluate_samples", "tables"} <= set(jobs)
    assert not set(jobs) & SHARED
    exps, jobs = rerun_experiments(work, args, "perov5_child")
    assert exps == {"perov5-child"} and jobs["experiment_tables"] == [{"exp": "perov5-child"}]
    assert "tables" not in jobs
    assert snakemake(["--touch", "--cores", "1", *targets, *args], cwd=work).returncode == 0

    # 2. a `set:` override in the workflow config (Snakemake's params trigger)
    cfg["experiments"]["qm9"]["set"] = cfg["experiments"]["qm9"]["set"] + ["train.lr=1e-4"]
    write_config(cfg, work / "three.yaml")
    exps, jobs = rerun_experiments(work, args)
    assert exps == {"qm9"}, exps
    assert snakemake(["--touch", "--cores", "1", *targets, *args], cwd=work).returncode == 0

    # 3. the parent file: perov5 and the experiment inheriting from it, nobody else; the
    # learning rate is not a setting preparation reads, so the data is not prepared again
    halve_lr(work / "config/experiments/perov-tiny.yaml")
    exps, jobs = rerun_experiments(work, args)
    assert exps == {"perov5", "perov5-child"}, exps
    assert "prepare" not in jobs
    assert snakemake(["--touch", "--cores", "1", *targets, *args], cwd=work).returncode == 0

    # 4. a setting prepare() reads (unite.kinds: data.seed draws the crystal split) in the
    # dataset's library config: perov5's data is prepared again, and both experiments on it rerun
    path = work / "config/experiments/perov-tiny.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("data", {})["seed"] = 7
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    exps, jobs = rerun_experiments(work, args)
    assert jobs.get("prepare") == [{"dataset": "perov5", "suffix": "npz"}], jobs.get("prepare")
    assert exps == {"perov5", "perov5-child"}, exps

