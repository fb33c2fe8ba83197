"""A bad workflow-config value stops the run before any job starts, with a message that names
the offending key: the workflow schema's keys and the library config's keys alike."""

from __future__ import annotations

import copy

import pytest

from workflow_helpers import REPO, default_config, snakemake, write_config


def exp(cfg) -> dict:
    return next(iter(cfg["experiments"].values()))


def plan(change, tmp_path) -> str:
    """Dry-run with a broken copy of the embedded default; returns what snakemake printed."""
    cfg = copy.deepcopy(default_config())
    change(cfg)
    path = write_config(cfg, tmp_path / "bad.yaml")
    run = snakemake(["-n", "--configfile", str(path)], cwd=REPO, timeout=120)
    assert run.returncode != 0
    assert "Traceback (most recent call last)" not in run.stdout
    assert "Building DAG of jobs" not in run.stdout  # stopped before planning any job
    return run.stdout


def test_every_schema_violation_is_named_at_once(tmp_path):
    def change(c):
        exp(c)["shards"] = 0
        c["resourses"] = c.pop("resources")
        c["sampling"]["protocols"]["heun-balanced"]["solver"] = "rk4"
        c["launcher"]["mode"] = "mpirun"

    out = plan(change, tmp_path)
    for expected in ("config key 'experiments.digits.shards': 0 is less than the minimum of 1",
                     "'resourses' was unexpected",
                     "config key 'sampling.protocols.heun-balanced.solver': 'rk4' is not one of",
                     "config key 'launcher.mode': 'mpirun' is not one of"):
        assert expected in out, out[-3000:]


CASES = {
    "protocol nobody defined": (
        lambda c: exp(c).update(protocols=["euler-fast"]),
        ["config key 'experiments.digits.protocols': 'euler-fast' is not one of"],
    ),
    "typo in a library override": (
        lambda c: exp(c).update(set=["train.stepz=3"]),
        ["config key 'experiments.digits'",
         "config key 'train.stepz': unknown key (did you mean 'train.steps'?)"],
    ),
    "ADM protocol on digits features": (
        lambda c: c["evaluation"].update(fid_protocols=["unite", "adm"]),
        ["config key 'evaluation.fid_protocols': adm compares Inception features"],
    ),
    "unknown validity protocol": (
        lambda c: c["evaluation"].update(validity_protocol="removeHs"),
        ["config key 'evaluation.validity_protocol': 'removeHs' is not one of"],
    ),
    "missing library config": (
        lambda c: exp(c).update(config="config/experiments/nope.yaml"),
        ["config file not found: config/experiments/nope.yaml"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_value_stops_the_run_naming_the_key(name, tmp_path):
    change, expected = CASES[name]
    out = plan(change, tmp_path)
    for text in expected:
        assert text in out, out[-3000:]
