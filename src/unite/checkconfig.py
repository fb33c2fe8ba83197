"""``python -m unite check-config FILE...``: say where a config file is broken, in one line.

Snakemake reads ``--configfile`` overlays itself, before the workflow's code runs, and reports
a YAML syntax error as "Config file is not valid JSON or YAML" without the file or the line
(Snakemake 9.27, ``snakemake/common/configfile.py``); nothing in the workflow can improve that
message. This command names the file, line and column; library configs (``data``/``model``/
``train``/``sample``/``finetune`` sections or ``inherit:``) are validated in full as well.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from unite import config as config_mod
from unite.errors import UserError

LIBRARY_KEYS = {"inherit", "name", "data", "model", "train", "sample", "finetune"}


def check_file(path: str | Path) -> str:
    """-> what was checked; a broken file is a UserError naming it (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(config_mod.yaml_error(path, exc)) from None
    if data is not None and not isinstance(data, dict):
        raise UserError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    if data and set(data) <= LIBRARY_KEYS:
        config_mod.load(path)
        return "library config, validated"
    return "YAML syntax only (the workflow checks its keys when it starts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="workflow overlays or library configs")


def run(args: argparse.Namespace) -> None:
    for f in args.files:
        print(f"{f}: ok, {check_file(f)}")
