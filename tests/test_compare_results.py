"""`python -m unite compare A B` names every difference between two results folders (table
cells, metric leaves, arrays, checkpoint tensors, files on one side only) and none where the
runs agree; wall-clock fields and logs do not count."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from unite import compare
from unite.errors import UserError


@pytest.fixture
def run_a(tmp_path):
    root = tmp_path / "a"
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "table1.csv").write_text("Row,gFID ours,Notes\nUNITE-B,22.82,digits\n")
    (root / "tables" / "table1.md").write_text("| Row | gFID ours |\n| UNITE-B | 22.82 |\n")
    (root / "metrics" / "digits").mkdir(parents=True)
    (root / "metrics" / "digits" / "gen.json").write_text(json.dumps(
        {"metrics": {"fid_digits": 22.8213, "is_digits": 6.8}, "flags": ["200 samples"]}))
    (root / "checkpoints" / "digits").mkdir(parents=True)
    (root / "checkpoints" / "digits" / "train_metrics.jsonl").write_text(
        json.dumps({"step": 10, "loss": 0.5, "samples_per_s": 100.0}) + "\n")
    np.savez(root / "samples.npz", images=np.arange(12, dtype=np.float32).reshape(3, 4),
             meta=np.str_(json.dumps({"nfe": 50})))
    torch.save({"model": {"w": torch.ones(3)}, "config": {"name": "digits"}, "step": 40},
               root / "checkpoints" / "digits" / "trained.pt")
    torch.save({"state_dict": {"fc": torch.zeros(2)}, "classes": 10},  # not a UNITE checkpoint
               root / "classifier.pt")
    (root / "logs").mkdir()
    (root / "logs" / "train.log").write_text("took 12.3 s\n")
    return root


def copy_of(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_identical_runs_have_no_differences(run_a, tmp_path):
    b = copy_of(run_a, tmp_path / "b")
    (b / "logs" / "train.log").write_text("took 99.9 s\n")  # logs are not results
    record = json.loads((b / "checkpoints/digits/train_metrics.jsonl").read_text())
    record["samples_per_s"] = 55.0  # nor is throughput
    (b / "checkpoints/digits/train_metrics.jsonl").write_text(json.dumps(record) + "\n")
    diffs, n = compare.compare_folders(run_a, b)
    assert n == 7 and diffs.lines == []


def test_every_kind_of_difference_is_named(run_a, tmp_path):
    b = copy_of(run_a, tmp_path / "b")
    (b / "tables" / "table1.csv").write_text("Row,gFID ours,Notes\nUNITE-B,22.83,digits\n")
    (b / "tables" / "table1.md").write_text("| Row | gFID ours |\n| UNITE-B | 22.83 |\n")
    gen = json.loads((b / "metrics/digits/gen.json").read_text())
    gen["metrics"]["fid_digits"] = 22.9
    (b / "metrics/digits/gen.json").write_text(json.dumps(gen))
    images = np.arange(12, dtype=np.float32).reshape(3, 4)
    images[1, 2] += 1e-6
    np.savez(b / "samples.npz", images=images, meta=np.str_(json.dumps({"nfe": 52})))
    torch.save({"model": {"w": torch.tensor([1.0, 1.0, 1.5])}, "config": {"name": "digits"},
                "step": 40}, b / "checkpoints" / "digits" / "trained.pt")
    (b / "tables" / "extra.csv").write_text("x\n1\n")
    torch.save({"state_dict": {"fc": torch.ones(2)}, "classes": 10}, b / "classifier.pt")

    diffs, _ = compare.compare_folders(run_a, b)
    text = "\n".join(diffs.lines)
    assert "tables/table1.csv: row 'UNITE-B', column 'gFID ours': '22.82' != '22.83'" in text
    assert "tables/table1.md: -| UNITE-B | 22.82 |" in text
    assert "metrics/digits/gen.json: metrics.fid_digits: 22.8213 != 22.9" in text
    assert "samples.npz: array images: max |difference|" in text and "(1 of 12 values" in text
    assert "samples.npz: meta.nfe: 50 != 52" in text
    assert "checkpoints/digits/trained.pt: model.w: max |difference| 0.5" in text
    assert "tables/extra.csv: only in B" in text
    assert "classifier.pt: state_dict.fc: max |difference| 1" in text
    assert len(diffs.files_differing) == 7


def test_tolerance_absorbs_small_numeric_differences(run_a, tmp_path):
    b = copy_of(run_a, tmp_path / "b")
    gen = json.loads((b / "metrics/digits/gen.json").read_text())
    gen["metrics"]["fid_digits"] *= 1 + 1e-9
    (b / "metrics/digits/gen.json").write_text(json.dumps(gen))
    assert compare.compare_folders(run_a, b)[0].files_differing == ["metrics/digits/gen.json"]
    assert compare.compare_folders(run_a, b, rtol=1e-6)[0].files_differing == []


def test_command_exit_status(run_a, tmp_path, capsys):
    from unite.cli import main

    b = copy_of(run_a, tmp_path / "b")
    main(["compare", str(run_a), str(b)])  # no SystemExit: identical
    assert "7 files in both; 0 differ" in capsys.readouterr().out
    (b / "tables" / "table1.md").unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(run_a), str(b)])
    assert exit_info.value.code == 1
    assert "tables/table1.md: only in A" in capsys.readouterr().out


def test_include_globs_limit_the_comparison(run_a, tmp_path):
    b = copy_of(run_a, tmp_path / "b")
    (b / "tables" / "table1.md").write_text("changed\n")
    diffs, n = compare.compare_folders(run_a, b, include=["tables/*.csv", "metrics/*"])
    assert n == 2 and diffs.lines == []


def test_missing_folder_is_a_user_error(run_a, tmp_path):
    with pytest.raises(UserError, match="not a results folder"):
        compare.compare_folders(run_a, tmp_path / "absent")
