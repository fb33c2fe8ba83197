"""Evaluation checks its inputs before it scores them: each wrong input below is refused with one
line naming the file and the array (exit 2, no traceback), and inputs a model may legitimately
produce but that the protocol counts as invalid are flagged in the JSON and marked in the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cli_helpers import user_error as refused
from unite import cli, tables
from unite.artifacts import write_sample_file
from unite.metrics import digits_classifier as dc
from unite.metrics.inputs import INPUT_FLAG
from unite.tables.paper import INPUT_MARK


# -- images ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clf") / "clf.pt"
    torch.save({"state_dict": dc.DigitsCNN().state_dict(), "num_classes": 10, "input_size": 16,
                "image_size": 16}, path)
    return path


@pytest.fixture(scope="module")
def ref(clf, tmp_path_factory):
    """Reference statistics of the digits train split at 16x16 (recorded in the file)."""
    path = tmp_path_factory.mktemp("ref") / "ref.npz"
    cli.main(["evaluate", "ref-stats", "--set", "data.image_size=16", "--set", "model.num_registers=16", "--out", str(path),
              "--weights", str(clf), "--quiet", "--device", "cpu"])
    return path


def image_file(path, n=20, size=16, labels=None):
    rng = np.random.default_rng(0)
    arrays = {"images": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
              "labels": np.arange(n) % 10 if labels is None else labels}
    return write_sample_file(path, arrays, {"experiment": "digits", "label_mode": "balanced"})


def images(samples, ref, out):
    return ["evaluate", "images", "--samples", str(samples), "--ref", str(ref), "--out", str(out),
            "--quiet", "--device", "cpu"]


def test_images_at_another_size_than_the_reference_are_refused(ref, tmp_path, capsys):
    for size in (32, 4):
        s = image_file(tmp_path / f"s{size}.npz", size=size)
        err = refused(images(s, ref, tmp_path / "o.json"), capsys)
        assert f"images are {size}x{size}" in err and "computed on 16x16 images" in err
        assert str(s) in err and str(ref) in err
    assert not (tmp_path / "o.json").exists()


def test_a_single_image_is_refused(ref, tmp_path, capsys):
    s = image_file(tmp_path / "one.npz", n=1)
    err = refused(images(s, ref, tmp_path / "o.json"), capsys)
    assert "holds 1 image(s); FID needs at least 2" in err and str(s) in err


def test_no_images_is_refused(ref, tmp_path, capsys):
    s = image_file(tmp_path / "none.npz", n=0, labels=np.zeros(0, np.int64))
    err = refused(images(s, ref, tmp_path / "o.json"), capsys)
    assert "images holds no images" in err and str(s) in err


def test_labels_of_the_wrong_length_or_range_are_refused(ref, tmp_path, capsys):
    s = image_file(tmp_path / "short.npz", n=20, labels=np.arange(7) % 10)
    err = refused(images(s, ref, tmp_path / "o.json"), capsys)
    assert "labels has shape (7,) for 20 images" in err and str(s) in err
    s = image_file(tmp_path / "range.npz", n=20, labels=np.arange(20))
    err = refused(images(s, ref, tmp_path / "o.json"), capsys)
    assert "labels holds 19, but the feature network knows 10 classes" in err


def truncated_copy(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_truncated_or_empty_npz_as_samples_or_reference_is_refused(ref, tmp_path, capsys):
    good = image_file(tmp_path / "good.npz")
    cut = truncated_copy(good, tmp_path / "cut.npz")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for bad in (cut, empty):
        err = refused(images(bad, ref, tmp_path / "o.json"), capsys)
        assert str(bad) in err and ("truncated" in err or "empty (0 bytes)" in err)
        bad_ref = tmp_path / f"ref-{bad.name}"
        if bad is cut:
            truncated_copy(ref, bad_ref)
        else:
            bad_ref.write_bytes(b"")
        err = refused(images(good, bad_ref, tmp_path / "o.json"), capsys)
        assert f"reference statistics {bad_ref}" in err


def test_the_reference_finds_its_classifier_from_another_directory(clf, tmp_path, monkeypatch):
    """The classifier path is stored relative to the reference file as well: evaluating from
    another working directory finds it."""
    project = tmp_path / "project"
    (project / "results").mkdir(parents=True)
    local_clf = project / "results" / "clf.pt"
    local_clf.write_bytes(clf.read_bytes())
    monkeypatch.chdir(project)
    cli.main(["evaluate", "ref-stats", "--set", "data.image_size=16", "--set", "model.num_registers=16", "--out", "results/ref.npz",
              "--weights", "results/clf.pt", "--quiet", "--device", "cpu"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = image_file(elsewhere / "s.npz")
    cli.main(images(s, project / "results" / "ref.npz", elsewhere / "o.json"))
    assert json.loads((elsewhere / "o.json").read_text())["metrics"]["fid_digits"] >= 0


# -- molecules ------------------------------------------------------------------------------
def molecule_file(path, n=3, types=None, positions=None):
    t = np.zeros((n, 29), np.int64)
    t[:, :3] = [8, 1, 1]  # water
    p = np.zeros((n, 29, 3), np.float32)
    p[:, 1] = [0.96, 0, 0]
    p[:, 2] = [-0.24, 0.93, 0]
    arrays = {"atom_types": t if types is None else types,
              "positions": p if positions is None else positions}
    return write_sample_file(path, arrays, {"experiment": "qm9"})


def molecules(samples, out):
    return ["evaluate", "molecules", "--samples", str(samples), "--out", str(out)]


def test_nan_or_inf_atom_positions_are_refused(tmp_path, capsys):
    pytest.importorskip("rdkit")
    p = np.zeros((3, 29, 3), np.float32)
    p[1, 0, 2] = np.nan
    p[2, 4, 0] = np.inf
    s = molecule_file(tmp_path / "nan.npz", positions=p)
    err = refused(molecules(s, tmp_path / "o.json"), capsys)
    assert "positions holds NaN/inf in 2 of 3 molecules" in err and str(s) in err
    assert not (tmp_path / "o.json").exists()


def test_invalid_atom_types_are_refused(tmp_path, capsys):
    pytest.importorskip("rdkit")
    for value in (200, -3):
        t = np.zeros((3, 29), np.int64)
        t[:, :3] = [8, 1, 1]
        t[2, 1] = value
        s = molecule_file(tmp_path / f"z{value}.npz", types=t)
        err = refused(molecules(s, tmp_path / "o.json"), capsys)
        assert f"atom_types holds {value} in 1 structure(s)" in err and "1..118" in err


def test_an_empty_sample_set_is_refused(tmp_path, capsys):
    pytest.importorskip("rdkit")
    s = molecule_file(tmp_path / "none.npz", n=0)
    err = refused(molecules(s, tmp_path / "o.json"), capsys)
    assert "holds no molecules" in err and str(s) in err


def test_a_truncated_molecule_file_is_refused(tmp_path, capsys):
    pytest.importorskip("rdkit")
    cut = truncated_copy(molecule_file(tmp_path / "m.npz", n=50), tmp_path / "cut.npz")
    err = refused(molecules(cut, tmp_path / "o.json"), capsys)
    assert "truncated or not an .npz" in err and str(cut) in err


# -- crystals -------------------------------------------------------------------------------
def crystal_file(path, lengths, angles):
    n = len(lengths)
    types = np.zeros((n, 20), np.int64)
    types[:, :2] = [11, 17]  # NaCl
    frac = np.zeros((n, 20, 3), np.float32)
    frac[:, 1] = 0.5
    arrays = {"atom_types": types, "frac_coords": frac,
              "lengths": np.asarray(lengths, np.float32), "angles": np.asarray(angles, np.float32)}
    return write_sample_file(path, arrays, {"experiment": "perov5"})


def test_nan_lattices_are_refused(tmp_path, capsys):
    pytest.importorskip("smact")
    s = crystal_file(tmp_path / "nan.npz", [[5.64] * 3, [np.nan, 5.64, 5.64]], [[90.0] * 3] * 2)
    err = refused(["evaluate", "crystals", "--samples", str(s), "--out", str(tmp_path / "o.json")],
                  capsys)
    assert "lengths holds NaN/inf in 1 of 2 crystals" in err


def test_degenerate_lattices_are_flagged_in_the_json_and_marked_in_the_table(tmp_path):
    pytest.importorskip("smact")
    lengths = [[5.64] * 3, [5.64] * 3, [0.0, 5.64, 5.64], [5.64] * 3]
    angles = [[90.0] * 3, [90.0, 40.0, 90.0], [90.0] * 3, [120.0, 120.0, 120.0]]  # 120^3: flat
    s = crystal_file(tmp_path / "degenerate.npz", lengths, angles)
    out = tmp_path / "results" / "metrics" / "perov5" / "gen_heun-balanced.json"
    cli.main(["evaluate", "crystals", "--samples", str(s), "--out", str(out)])
    res = json.loads(out.read_text())
    flag = [f for f in res["flags"] if f.startswith(INPUT_FLAG)]
    assert flag and "3 of 4 crystals have no buildable cell" in flag[0]
    assert res["metrics"]["struct_validity"] == pytest.approx(0.25)

    tables.write_tables(tmp_path / "results", tmp_path / "tables",
                        {"unite-s-mp20": "perov5"}, "heun-balanced")
    md = (tmp_path / "tables" / "table5_mp20.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| UNITE-S"))
    assert f"25.00{INPUT_MARK} |" in row and "3 of 4 crystals" in row
    assert "flagged the inputs" in md
    tex = (tmp_path / "tables" / "table5_mp20.tex").read_text()
    assert INPUT_MARK.strip() in tex


def test_gather_refuses_a_truncated_shard_in_one_line(tmp_path):
    shard = write_sample_file(tmp_path / "s0.npz", {"images": np.zeros((40, 8, 8, 3), np.uint8)},
                              {"shard": 0})
    cut = truncated_copy(shard, tmp_path / "cut.npz")
    run = subprocess.run([sys.executable, "-m", "unite", "gather", "--inputs", str(cut), "--out",
                          str(tmp_path / "all.npz")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert str(cut) in run.stderr and "truncated" in run.stderr
