"""`unite finetune` is an honest passthrough until GAN decoder fine-tuning exists: the weights
written are the weights read, and meta says fine_tuned = false / "not implemented"."""

import pytest
import torch
import yaml

from analysis_checkpoints import TINY, write_checkpoint
from unite.checkpoint import load_model, read
from unite.cli import main
from unite.finetune import PASSTHROUGH


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_passthrough_keeps_weights_and_marks_meta(tmp_path, capsys):
    src, dst = tmp_path / "last.pt", tmp_path / "ft" / "finetuned.pt"
    write_checkpoint(src, step=11)
    before = src.read_bytes()
    main(["finetune", "--ckpt", str(src), "--out", str(dst)])
    out = capsys.readouterr().out
    assert "PASSTHROUGH" in out and "fine_tuned = false" in out
    assert src.read_bytes() == before  # the input is untouched
    a, b = read(src), read(dst)
    assert _same_state(a["model"], b["model"]) and _same_state(a["ema"], b["ema"])
    assert b["step"] == 11 and b["config"] == a["config"]
    assert b["meta"] == {"fine_tuned": False, "finetune": PASSTHROUGH, "finetune_requested_epochs": 0}
    _, _, meta = load_model(dst)
    assert meta["fine_tuned"] is False and meta["finetune"] == PASSTHROUGH
    assert not list(dst.parent.glob("*.tmp"))  # atomic write leaves no temp file


def test_requested_epochs_are_reported_not_run(tmp_path, capsys):
    src, dst = tmp_path / "last.pt", tmp_path / "ft.pt"
    write_checkpoint(src)
    cfg_file = tmp_path / "ft.yaml"
    cfg_file.write_text(yaml.safe_dump({**TINY, "finetune": {"epochs": 16}}))
    main(["finetune", "--ckpt", str(src), "--out", str(dst), "--config", str(cfg_file)])
    out = capsys.readouterr().out
    assert "finetune.epochs = 16; no epochs were run" in out
    b = read(dst)
    assert b["meta"]["fine_tuned"] is False and b["meta"]["finetune_requested_epochs"] == 16
    assert _same_state(read(src)["ema"], b["ema"])


def test_missing_checkpoint_and_negative_epochs_are_user_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["finetune", "--ckpt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o.pt")])
    assert exc.value.code == 2 and "checkpoint not found" in capsys.readouterr().err
    src = tmp_path / "last.pt"
    write_checkpoint(src)
    with pytest.raises(SystemExit) as exc:
        main(["finetune", "--ckpt", str(src), "--out", str(tmp_path / "o.pt"),
              "--set", "finetune.epochs=-1"])
    assert exc.value.code == 2 and "finetune.epochs" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
