"""Per-experiment Snakemake targets: ``snakemake unite_b_separate`` runs one experiment.

Researchers rerun one experiment (one ablation, one model size) after changing a setting,
not the whole reproduction. The workflow therefore names a target after each experiment,
which runs its chain through evaluation and refreshes the tables, and one per stage of it
(``unite_b_separate_train``, ``..._sample``, ...). This module holds the naming rules, so
that a clash (two experiments that give one rule name, or a name that is already a rule)
stops the workflow with a message instead of silently running the wrong thing.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from unite.errors import UserError

# The stages of one experiment, in pipeline order; "tables" refreshes the tables and writes
# the rows this experiment fills (RESULTS/tables/experiments/<experiment>.md).
STAGES = ("train", "finetune", "sample", "reconstruct", "evaluate", "analyze", "figures",
          "tables")

STAGE_DOC = {
    "train": "training only",
    "finetune": "training, then GAN decoder fine-tuning",
    "sample": "samples of every sampling protocol (and the guidance sweep that picks their w)",
    "reconstruct": "reconstructions of the val split",
    "evaluate": "every metric file: generation, reconstruction",
    "analyze": "the Sec. 4 analyses",
    "figures": "its figures: sample grid, reconstruction pairs, loss curves",
    "tables": "its metrics, then the tables refreshed and its rows written",
}


def rule_name(experiment: str) -> str:
    """A valid rule name for an experiment: ``unite-b-noise0.0`` -> ``unite_b_noise0_0``."""
    name = re.sub(r"\W", "_", experiment, flags=re.ASCII)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"exp_{name}"
    return name


@dataclass(frozen=True)
class Target:
    """One target rule: its name, what it asks for, and its one-line description."""

    rule: str
    experiment: str
    stage: str  # "" for the whole experiment
    files: tuple[str, ...]
    doc: str


def experiment_targets(stage_files: dict[str, dict[str, list[str]]],
                       taken: set[str]) -> list[Target]:
    """Targets for ``{experiment: {stage: files}}``: the whole experiment, then each stage
    that produces something. ``taken`` are the rule names the workflow already has."""
    targets: list[Target] = []
    for experiment, stages in stage_files.items():
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)} (known: {', '.join(STAGES)})")
        base = rule_name(experiment)
        present = [s for s in STAGES if stages.get(s)]
        everything = tuple(dict.fromkeys(f for s in present for f in stages[s]))
        chain = " -> ".join(s for s in present if s != "tables")
        targets.append(Target(base, experiment, "", everything,
                              f"experiment {experiment}: {chain}, then refresh the tables"))
        targets += [Target(f"{base}_{s}", experiment, s, tuple(stages[s]),
                           f"experiment {experiment}: {STAGE_DOC[s]}") for s in present]
    check_unique(targets, taken)
    return targets


def check_unique(targets: list[Target], taken: set[str]) -> None:
    """Two experiments may not share a target name, nor take the name of an existing rule."""
    owner: dict[str, Target] = {}
    for t in targets:
        if t.rule in taken:
            raise UserError(
                f"experiment {t.experiment!r}: its target {t.rule!r} is already a rule of the "
                "workflow; rename the experiment")
        other = owner.get(t.rule)
        if other is not None:
            raise UserError(
                f"experiments {other.experiment!r} and {t.experiment!r} both give the target "
                f"{t.rule!r}; rename one of them")
        owner[t.rule] = t
