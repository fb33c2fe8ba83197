"""``python -m unite prepare --config C --out PATH``: turn a dataset into one versioned file.

Dispatches on ``data.kind`` to the ``prepare(cfg, out_path) -> dict`` of the dataset module
that its row of ``unite.kinds.DATA_KINDS`` names, and prints that summary as one JSON line.
Later runs point ``data.root`` at PATH (QM9, crystals, imagefolder) so that training never re-parses raw
sources, and the workflow can version PATH as the data artefact.
"""

from __future__ import annotations

import argparse
import importlib
import json

from unite import config as config_mod
from unite import kinds
from unite.cliargs import add_set
from unite.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML (data section is used)")
    parser.add_argument("--out", required=True, help="output file (e.g. data/qm9.npz)")
    add_set(parser, "data.root=data/perov_5")


def prepare(cfg, out_path) -> dict:
    module = importlib.import_module(kinds.get(cfg.data.kind).module)
    fn = getattr(module, "prepare", None)
    if fn is None:
        raise UserError(f"data.kind '{cfg.data.kind}' has no prepare step")
    return fn(cfg, out_path)


def run(args: argparse.Namespace) -> None:
    cfg = config_mod.load(args.config, args.set)
    summary = prepare(cfg, args.out)
    print(json.dumps({"out": str(args.out), **summary}))
