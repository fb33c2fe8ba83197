"""``--device`` and ``--set`` mean the same in every command (``unite.cliargs``)."""

import argparse

from unite.checkpoint import resolve_device
from unite.cli import build_parser
from unite.cliargs import DEVICE_HELP


def _commands(parser: argparse.ArgumentParser, prefix=()):
    """(command path, parser) for every leaf command, nested subcommands included."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, prefix + (name,))


def _option(parser, flag):
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_device_option_defaults_to_auto_with_one_meaning():
    with_device = []
    for path, parser in _commands(build_parser()):
        opt = _option(parser, "--device")
        if opt is None:
            continue
        with_device.append(" ".join(path))
        assert opt.default == "auto" and opt.help == DEVICE_HELP, path
    # sampling, reconstruction, decoding, training, fine-tuning, metrics and analyses
    assert {"sample", "reconstruct", "decode", "train", "finetune"} <= set(with_device)
    assert any(p.startswith("evaluate") for p in with_device)
    assert any(p.startswith("analyze") for p in with_device)
    assert resolve_device("auto") in ("cpu", "cuda") and resolve_device("cpu") == "cpu"


def test_every_set_option_collects_repeated_overrides():
    found = 0
    for path, parser in _commands(build_parser()):
        if _option(parser, "--set") is None:
            continue
        found += 1
        opt = _option(parser, "--set")
        assert opt.default == [] and isinstance(opt, argparse._AppendAction), path
    assert found >= 5
