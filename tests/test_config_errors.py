"""A bad workflow-config value stops the run before any job starts, with a message that names
the offending key: the workflow schema's keys and the library config's keys alike."""

from __future__ import annotations

import copy

import pytest

from workflow_helpers import REPO, default_config, snakemake, write_config


def broken(change) -> dict:
    cfg = copy.deepcopy(default_config())
    change(cfg)
    return cfg


def exp(cfg) -> dict:
    return next(iter(cfg["experiments"].values()))


CASES = {
    "shards below one": (
        lambda c: exp(c).update(shards=0),
        "config key 'experiments.digits.shards'",
    ),
    "typo in a top-level key": (
        lambda c: c.update(resourses=c.pop("resources")),
        "'resourses' was unexpected",
    ),
    "unknown solver": (
        lambda c: c["sampling"]["protocols"]["heun-balanced"].update(solver="rk4"),
        "config key 'sampling.protocols.heun-balanced.solver'",
    ),
    "negative GPU request": (
        lambda c: c["resources"].update(train={"gpu": -1}),
        "config key 'resources.train.gpu'",
    ),
    "protocol nobody defined": (
        lambda c: exp(c).update(protocols=["euler-fast"]),
        "config key 'experiments.digits.protocols'",
    ),
    "typo in a library override": (
        lambda c: exp(c).update(set=["train.stepz=3"]),
        "config key 'train.stepz': unknown key (did you mean 'train.steps'?)",
    ),
    "library value out of range": (
        lambda c: exp(c).update(set=["train.steps=0"]),
        "config key 'train.steps': must be > 0",
    ),
    "missing library config": (
        lambda c: exp(c).update(config="config/experiments/nope.yaml"),
        "config file not found: config/experiments/nope.yaml",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_value_stops_the_run_naming_the_key(name, tmp_path):
    change, expected = CASES[name]
    cfg = write_config(broken(change), tmp_path / "bad.yaml")
    run = snakemake(["-n", "--configfile", str(cfg)], cwd=REPO, timeout=120)
    assert run.returncode != 0
    assert expected in run.stdout, run.stdout[-3000:]
    assert "Traceback (most recent call last)" not in run.stdout
    assert "Building DAG of jobs" not in run.stdout  # stopped before planning any job


def test_the_library_error_says_which_experiment(tmp_path):
    cfg = write_config(broken(lambda c: exp(c).update(set=["model.size=XXL"])),
                       tmp_path / "bad.yaml")
    run = snakemake(["-n", "--configfile", str(cfg)], cwd=REPO, timeout=120)
    assert run.returncode != 0
    assert "config key 'experiments.digits'" in run.stdout
    assert "config key 'model.size': 'XXL' is not one of" in run.stdout
