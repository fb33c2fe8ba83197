"""DVC never calls a stale result up to date: dvc.yaml is generated from the workflow's stage
table, its stage dependencies are the ones the workflow's jobs really have, and every setting
(each experiment-level key, experiment_defaults, protocols, a new experiment ...) marks exactly
the stages whose jobs it changes, as `dvc status` reports them."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from unite import stages
from workflow_helpers import (
    BIN,
    REPO,
    copy_workflow,
    default_config,
    run_bounded,
    tool,
    write_config,
)

ALL = {s.name for s in stages.STAGES}


def env_for(repo: Path) -> dict:
    return {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}


def sh(cmd: list, cwd: Path, timeout: int = 300) -> str:
    run = run_bounded(cmd, cwd, timeout, env_for(cwd))
    assert run.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{run.stdout[-4000:]}"
    return run.stdout


def test_dvc_yaml_is_what_the_generator_writes():
    assert (REPO / "dvc.yaml").read_text() == stages.render(), \
        "run `python -m unite dvc-stages write` after changing src/unite/stages.py"
    spec = yaml.safe_load(stages.render())
    assert list(spec["stages"]) == [stages.PLAN_STAGE, *(s.name for s in stages.STAGES)]
    for s in stages.STAGES:
        stage = spec["stages"][s.name]
        assert stage["cmd"].startswith(f"snakemake --profile profiles/local stage_{s.name} ")
        assert f"${{results}}/plan/{s.name}.txt" in stage["deps"]
        assert stage["outs"] == [{f"${{results}}/{s.out}": {"persist": True}}]


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml"])
def test_the_stage_table_has_the_workflows_targets_and_dependencies(configfile):
    """Every stage_* target of the workflow is a DVC stage, and every file a stage's jobs read
    from another stage's folder comes from a stage listed in its `after`."""
    out = stages.dry_run(REPO, ["--configfile", configfile])
    jobs = stages.parse_dry_run(out)
    targets = {j.rule[len("stage_"):] for j in jobs if j.rule.startswith("stage_")}
    assert targets == ALL
    results = yaml.safe_load((REPO / configfile).read_text())["results"].rstrip("/")
    folder_of = {s.out: s.name for s in stages.STAGES}
    by_name = stages.stage_by_name()
    for name, stage_jobs in stages.assign(jobs).items():
        assert stage_jobs, f"stage {name} has no job"
        for job in stage_jobs:
            for f in job.files("input"):
                parts = Path(f).parts
                if not f.startswith(results + "/") or len(parts) < 2 or parts[1] not in folder_of:
                    continue
                source = folder_of[parts[1]]
                assert source == name or source in by_name[name].after, \
                    f"stage {name}: job {job.rule} reads {f} from stage {source}, not in `after`"


def test_the_plan_parser_keeps_what_decides_a_job_and_drops_what_varies():
    text = """\
[Thu Dec  3 08:09:48 2026]
rule sample_shard:
    input: results/finetuned/digits/finetuned.pt
    output: results/samples/digits/heun/shard0-of-2.npz
    jobid: 7
    reason: Forced execution
    wildcards: exp=digits, protocol=heun, shard=0, nshards=2
    resources: tmpdir=/tmp, runtime=60
Shell command: /opt/venv/bin/python3 -m unite sample --ckpt results/finetuned/digits/finetuned.pt --per-class 20

[Thu Dec  3 08:09:48 2026]
rule gather:
    input: results/samples/digits/heun/shard0-of-2.npz
    output: results/samples/digits/heun.npz
    jobid: 3
Shell command: /opt/venv/bin/python3 -m unite gather --inputs results/samples/digits/heun/shard0-of-2.npz
Would remove temporary output results/samples/digits/heun/shard0-of-2.npz

[Thu Dec  3 08:09:48 2026]
localrule stage_sample:
    input: results/samples/digits/heun.npz
    jobid: 1
Shell command: None
"""
    plan = stages.plan_texts(text)
    sample = plan["sample"]
    assert "rule sample_shard" in sample and "rule gather" in sample  # shards join their stage
    assert "PYTHON -m unite sample --ckpt results/finetuned/digits/finetuned.pt --per-class 20" in sample
    assert "/opt/venv" not in sample and "jobid" not in sample and "tmpdir" not in sample
    assert "Would remove" not in sample  # Snakemake's messages are not part of a command
    assert all("rule" not in plan[s].split("\n\n", 1)[1] for s in ALL - {"sample"})


# -- the staleness test: each setting, through real DVC -----------------------------------------
def setter(path: str, value):
    def edit(cfg, repo):
        *parents, key = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
    return edit


def new_experiment(cfg, repo):
    cfg["experiments"]["qm9b"] = copy.deepcopy(cfg["experiments"]["qm9"])


def add_set(cfg, repo):
    cfg["experiments"]["digits"]["set"] = [*cfg["experiments"]["digits"]["set"], "train.seed=1"]


def other_library_config(cfg, repo):
    lib = repo / "config" / "experiments"
    shutil.copy(lib / "qm9-tiny.yaml", lib / "qm9-tiny-copy.yaml")
    cfg["experiments"]["qm9"]["config"] = "config/experiments/qm9-tiny-copy.yaml"


def other_dataset(cfg, repo):
    cfg["datasets"]["qm9b"] = copy.deepcopy(cfg["datasets"]["qm9"])
    cfg["experiments"]["qm9"]["dataset"] = "qm9b"


DOWNSTREAM_OF_FINETUNE = {"finetune", "sample", "reconstruct", "evaluate", "analyze", "figures",
                          "tables"}
# setting -> the stages whose jobs it changes, read off the rules (workflow/rules/*.smk)
CASES = {
    # every experiment-level key of the workflow schema
    # the guidance sweep's sample count too: the sweep is part of the sample stage
    "experiments.digits.per_class": (setter("experiments.digits.per_class", 10), {"sample"}),
    "experiments.qm9.num_samples": (setter("experiments.qm9.num_samples", 100), {"sample"}),
    "experiments.perov5.shards": (setter("experiments.perov5.shards", 1), {"sample"}),
    "experiments.qm9.recon_limit": (setter("experiments.qm9.recon_limit", 50), {"reconstruct"}),
    "experiments.digits.finetune": (setter("experiments.digits.finetune", False),
                                    DOWNSTREAM_OF_FINETUNE),
    # no sweep: every protocol samples at its own w (sample, the grid drawn from them) and the
    # tables lose the sweep's block
    "experiments.digits.cfg_sweep": (setter("experiments.digits.cfg_sweep", False),
                                     {"sample", "figures", "tables"}),
    "experiments.digits.analyses": (setter("experiments.digits.analyses", ["alignment"]),
                                    {"analyze", "tables"}),
    "experiments.digits.protocols": (setter("experiments.digits.protocols", ["heun-balanced"]),
                                     {"sample", "evaluate", "tables"}),
    "experiments.digits.stands_for": (setter("experiments.digits.stands_for", ["unite-b"]),
                                      {"tables"}),
    "experiments.digits.set": (add_set, {"train", "finetune"}),
    # a new file under config/experiments also changes that folder, a dependency of the stages
    # that read library configs (prepare, reference, train); a molecule experiment has no
    # fine-tuning job, so its library config and dataset never reach that stage
    "experiments.qm9.config": (other_library_config, {"prepare", "reference", "train"}),
    "experiments.qm9.dataset": (other_dataset, {"prepare", "train", "reconstruct"}),
    # defaults, sections and structure
    "experiment_defaults.shards": (setter("experiment_defaults.shards", 3), {"sample"}),
    "experiment_defaults.finetune": (setter("experiment_defaults.finetune", False),
                                     DOWNSTREAM_OF_FINETUNE),
    # a molecule experiment: never fine-tuned (the paper fine-tunes image decoders only)
    "a new experiment": (new_experiment, {"train", "sample", "reconstruct",
                                          "evaluate", "figures", "tables"}),
    "sampling.primary": (setter("sampling.primary", "dopri5-balanced"),
                         {"sample", "evaluate", "figures", "tables"}),
    "sampling.protocols.heun-balanced.steps": (
        setter("sampling.protocols.heun-balanced.steps", 30), {"sample", "figures"}),
    "sampling.cfg_sweep.scales": (setter("sampling.cfg_sweep.scales", [1.0, 3.0]), {"sample"}),
    "evaluation.grid_per_class": (setter("evaluation.grid_per_class", 2), {"figures"}),
    "evaluation.novelty": (setter("evaluation.novelty", True), {"evaluate"}),
    "datasets.digits.set": (setter("datasets.digits.set", ["data.seed=1"]),
                            {"prepare", "reference"}),
    # fine-tuning is launched like training (DDP, the same launcher)
    "launcher.mode": (setter("launcher.mode", "torchrun"), {"train", "finetune"}),
    "python": (setter("python", "/usr/bin/python3"), ALL),
    "resources (no result depends on them)": (setter("resources.default.runtime", 30), set()),
}
FAST = ("experiments.digits.per_class", "a new experiment", "resources (no result depends on them)")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the workflow under git + DVC whose every stage is recorded as done."""
    repo = copy_workflow(tmp_path_factory.mktemp("dvc") / "repo")
    shutil.copytree(REPO / "src", repo / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (repo / ".dvcignore").write_text((REPO / ".dvcignore").read_text())
    write_config(default_config(), repo / "config" / "config.yaml")
    sh(["git", "init", "-q"], repo)
    sh([tool("dvc"), "init", "-q"], repo)
    sh([tool("dvc"), "config", "core.analytics", "false"], repo)
    sh([tool("dvc"), "repro", "--single-item", stages.PLAN_STAGE], repo)
    for s in stages.STAGES:  # stand-ins for finished outputs: `dvc status` compares hashes
        (repo / "results" / s.out).mkdir(parents=True, exist_ok=True)
        (repo / "results" / s.out / "done.txt").write_text(s.name)
    sh([tool("dvc"), "commit", "--force"], repo)
    assert "up to date" in sh([tool("dvc"), "status"], repo)
    return repo


def changed_stages(repo: Path, edit) -> set[str]:
    """Apply `edit` to the workflow config, refresh the plan, and return what `dvc status`
    reports as changed; everything is restored afterwards."""
    config = repo / "config" / "config.yaml"
    saved = {p: p.read_bytes() for p in (config, repo / "dvc.lock")}
    plan = repo / "results" / stages.PLAN_FOLDER
    saved_plan = {p.name: p.read_bytes() for p in plan.iterdir()}
    before = set((repo / "config").rglob("*"))
    try:
        cfg = yaml.safe_load(config.read_text())
        edit(cfg, repo)
        write_config(cfg, config)
        sh([tool("dvc"), "repro", "--single-item", stages.PLAN_STAGE], repo)
        status = json.loads(sh([tool("dvc"), "status", "--json"], repo).strip().splitlines()[-1])
        return set(status) - {stages.PLAN_STAGE}
    finally:
        for p in set((repo / "config").rglob("*")) - before:
            p.unlink()
        for p, data in saved.items():
            p.write_bytes(data)
        shutil.rmtree(plan)
        plan.mkdir()
        for name, data in saved_plan.items():
            (plan / name).write_bytes(data)


def check(repo, name):
    edit, expected = CASES[name]
    assert changed_stages(repo, edit) == expected, name


@pytest.mark.parametrize("name", FAST)
def test_a_changed_setting_marks_exactly_the_stages_it_reaches(repo, name):
    check(repo, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CASES if n not in FAST])
def test_every_setting_marks_exactly_the_stages_it_reaches(repo, name):
    check(repo, name)
