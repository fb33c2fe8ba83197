"""Command-line options that several ``unite`` commands share, defined once so that they mean
the same everywhere (a user's ``--device auto`` or ``--set`` works with every command)."""

from __future__ import annotations

import argparse

DEVICE_HELP = "auto (cuda when available, else cpu; the default) | cpu | cuda[:i]"


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved with :func:`unite.checkpoint.resolve_device`."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_set(parser: argparse.ArgumentParser, example: str = "train.lr=3e-4") -> None:
    """``--set KEY=VALUE`` config overrides, applied after the config file (repeatable)."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. --set {example} (repeatable)")
