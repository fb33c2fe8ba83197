"""``python -m unite <command>``: each command lives in its own module.

A command module exposes ``add_arguments(parser)`` and ``run(args)``; the table below maps
command names to modules so that importing the CLI stays cheap (torch loads only when a
command runs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from unite.atomic import ENVIRONMENT_ERRNOS, check_writable, environment_error
from unite.errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("unite.info", "parameter counts and training FLOPs of a config (meta device)"),
    "train": ("unite.training", "single-stage joint training (tokenizer + denoiser + decoder)"),
    "sample": ("unite.sampling", "generate samples with the probability-flow ODE"),
    "gather": ("unite.gather", "join the shard files of one sampling run"),
    "reconstruct": ("unite.reconstruct", "encode and decode a data split"),
    "prepare": ("unite.data.prepare", "prepare a dataset into a versioned array file"),
    "evaluate": ("unite.metrics.cli", "metrics for images, molecules or crystals"),
    "finetune": ("unite.finetune", "GAN decoder fine-tuning (frozen GE)"),
    "decode": ("unite.decode", "decode a sample file's stored latents with another decoder"),
    "analyze": ("unite.analysis.cli", "alignment, entropy and trajectory analyses"),
    "tables": ("unite.tables", "assemble results tables beside the paper's numbers"),
    "claims": ("unite.claims.report", "verdicts of the paper's claims over seeds (table, figure)"),
    "fetch": ("unite.fetch", "download a weights/data file and verify its sha256"),
    "check-config": ("unite.checkconfig", "say where a workflow overlay or library config is broken"),
    "dvc-stages": ("unite.stages", "write dvc.yaml from the workflow's stages; plan each stage's jobs"),
    "draw": ("unite.drawings", "pictures of generated molecules and crystals"),
    "compare": ("unite.compare", "print every difference between two results folders"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("unite"):
                p.set_defaults(_missing=str(exc))
                continue
            raise
        module.add_arguments(p)
    return parser


def check_output_folder(args: argparse.Namespace) -> None:
    """Every command's ``--out`` must be writable before any work starts: a run folder (or an
    output folder such as the tables') itself, else the folder a file goes into."""
    out = getattr(args, "out", None)
    if not out:
        return
    out = Path(out)
    check_writable(out if out.is_dir() or getattr(args, "_out_is_folder", False) else out.parent)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        print(f"error: command '{args.command}' is not available: {args._missing}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(args._module)
    try:
        check_output_folder(args)
        module.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # full disk, quota, read-only folder: the cause in one line
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        print(f"error: {environment_error(exc.filename or '?', exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
