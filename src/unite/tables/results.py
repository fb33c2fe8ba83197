"""Our numbers: every metric record (:mod:`unite.artifacts`) under a results folder, keyed by
(experiment, source)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unite.artifacts import read_record
from unite.errors import UserError


@dataclass
class Result:
    """One metric file: where it came from and what it says."""

    experiment: str
    source: str
    kind: str
    metrics: dict
    scale: dict
    flags: list = field(default_factory=list)
    path: str = ""
    provenance: dict = field(default_factory=dict)


def source_of(path: Path) -> str:
    return path.stem


def experiment_of(path: Path, record: dict) -> str:
    """The workflow's experiment name: RESULTS/metrics/<experiment>/<source>.json (the guidance
    sweep: RESULTS/samples/<experiment>/cfg_sweep.json)."""
    if path.parent.parent.name in ("metrics", "samples"):
        return path.parent.name
    return str(record.get("experiment", path.parent.name))


def read_results(results_dir: str | Path) -> dict[tuple[str, str], Result]:
    """Every metric file under ``results_dir``, keyed by (experiment, source)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"--results {root}: no such folder")
    found: dict[tuple[str, str], Result] = {}
    for path in sorted(root.rglob("*.json")):
        record = read_record(path)
        if record is None:
            continue
        res = Result(
            experiment=experiment_of(path, record),
            source=source_of(path),
            kind=str(record["kind"]),
            metrics=record.get("metrics") or {},
            scale=record.get("scale") or {},
            flags=list(record.get("flags") or []),
            path=str(path),
            provenance=record.get("provenance") or {},
        )
        found[(res.experiment, res.source)] = res
    return found
