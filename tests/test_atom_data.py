"""QM9 and crystal data: real sources parse into centred / Niggli-reduced slot arrays, the
splits are seeded and disjoint, bad rows are reported by name, and prepared files round-trip."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from unite import config
from unite.errors import UserError

# the offline crystal data ships in the repository (data/README.md): never skipped
PEROV = Path(__file__).resolve().parents[1] / "data" / "perov_5"
MP20_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mp_20_sample"


def qm9_cfg(root="", **data):
    return config.from_dict({"data": {"kind": "qm9", "root": str(root), "num_classes": 1,
                                      "max_atoms": 29, **data}})


def crystal_cfg(root, **data):
    return config.from_dict({"data": {"kind": "crystals", "root": str(root), "num_classes": 1,
                                      "max_atoms": 20, **data}})


# -- QM9 ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qm9_small(tmp_path_factory):
    pytest.importorskip("pandas")
    from unite.data import qm9

    try:
        folder = qm9.qm9pack_folder()
    except UserError as exc:
        pytest.skip(str(exc))
    types, pos, index = qm9.read_qm9pack(folder, limit=1300)
    path = tmp_path_factory.mktemp("qm9") / "qm9_small.npz"
    qm9.write_prepared(path, types, pos, index, seed=0, source="test")
    return path, types, pos, folder


def test_qm9_fast_parser_equals_python_literals(qm9_small):
    import pandas as pd

    _, types, pos, folder = qm9_small
    df = pd.read_csv(folder / "qm9_part1.csv", usecols=["Elements", "XYZ_Ang"], nrows=300)
    z_of = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
    for i in range(0, 300, 7):
        els = ast.literal_eval(df["Elements"][i])
        xyz = np.array(ast.literal_eval(df["XYZ_Ang"][i]))
        n = len(els)
        assert list(types[i, :n]) == [z_of[e] for e in els] and not types[i, n:].any()
        np.testing.assert_allclose(pos[i, :n], xyz - xyz.mean(0), atol=1e-5)
        assert not pos[i, n:].any()


def test_qm9_molecules_explicit_h_centred(qm9_small):
    _, types, pos, _ = qm9_small
    mask = types > 0
    assert (types == 1).sum() > (types == 6).sum()  # explicit hydrogens outnumber carbons
    centroid = (pos * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    assert np.abs(centroid).max() < 1e-4
    # occupied slots come first, padding after
    assert all(not mask[i, mask[i].sum():].any() for i in range(len(mask)))


def test_qm9_split_sizes_are_the_adit_split():
    from unite.data.qm9 import split_indices

    s = split_indices(130_831, seed=0)
    assert [len(s[k]) for k in ("train", "val", "test")] == [100_000, 18_000, 12_831]
    assert len(np.unique(np.concatenate(list(s.values())))) == 130_831
    again = split_indices(130_831, seed=0)
    other = split_indices(130_831, seed=1)
    assert np.array_equal(s["train"], again["train"])
    assert not np.array_equal(s["train"], other["train"])


def test_qm9_dataset_reads_prepared_file(qm9_small):
    from unite.data import build_dataset

    path = qm9_small[0]
    sets = {s: build_dataset(qm9_cfg(path), s) for s in ("train", "val", "test")}
    assert sum(len(d) for d in sets.values()) == 1300
    assert len(sets["train"]) == round(1300 * 100_000 / 130_831)
    x, y = sets["val"][3]
    assert y == 0
    assert x["atom_types"].shape == (29,) and x["atom_types"].dtype == torch.long
    assert x["positions"].shape == (29, 3) and x["positions"].dtype == torch.float32
    sub = build_dataset(qm9_cfg(path, subset=10), "train")
    assert len(sub) == 10
    assert torch.equal(sub[4][0]["positions"], sets["train"][4][0]["positions"])


def test_qm9_random_rotation_keeps_distances(qm9_small):
    from unite.data.qm9 import QM9Dataset

    path = qm9_small[0]
    plain = QM9Dataset(qm9_cfg(path), "train")
    rotated = QM9Dataset(qm9_cfg(path, random_rotation=True), "train")
    a, b = plain[5][0]["positions"], rotated[5][0]["positions"]
    assert not torch.allclose(a, b)
    def dist(p):
        return (p[:, None] - p[None]).norm(dim=-1)

    torch.testing.assert_close(dist(a), dist(b), atol=1e-4, rtol=0)


def test_qm9_missing_or_foreign_file_is_a_user_error(tmp_path):
    from unite.data.qm9 import QM9Dataset

    with pytest.raises(UserError, match="prepare"):
        QM9Dataset(qm9_cfg(tmp_path / "nope.npz"), "train")
    with pytest.raises(UserError, match="data.root is empty"):
        QM9Dataset(qm9_cfg(""), "train")
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.str_(json.dumps({"format": "something-else"})))
    with pytest.raises(UserError, match="format"):
        QM9Dataset(qm9_cfg(other), "train")


# -- crystals -------------------------------------------------------------------------------
def test_perov_rows_niggli_reduced_and_faithful():
    pytest.importorskip("pymatgen")
    import pandas as pd
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Lattice, Structure

    from unite.data.crystals import read_cif_csv

    arrays = read_cif_csv(PEROV / "val.csv.gz", max_atoms=20, limit=40)
    assert len(arrays) == 40
    n_atoms = (arrays.atom_types > 0).sum(1)
    assert (n_atoms == 5).all()  # perov_5: five atoms per cell
    assert (arrays.frac_coords >= 0).all() and (arrays.frac_coords < 1).all()
    assert (arrays.angles >= 59.9).all() and (arrays.angles <= 120.1).all()  # Niggli
    cifs = pd.read_csv(PEROV / "val.csv.gz", nrows=40)["cif"]
    matcher = StructureMatcher()
    for i in range(0, 40, 5):
        k = arrays.atom_types[i] > 0
        ours = Structure(Lattice.from_parameters(*arrays.lengths[i], *arrays.angles[i]),
                         arrays.atom_types[i][k].tolist(), arrays.frac_coords[i][k])
        assert matcher.fit(ours, Structure.from_str(cifs[i], fmt="cif"))


def test_mp20_format_rows_parse():
    pytest.importorskip("pymatgen")
    from unite.data.crystals import read_cif_csv

    arrays = read_cif_csv(MP20_SAMPLE / "mp_20_rows.csv", max_atoms=20)
    assert len(arrays) >= 3
    assert ((arrays.atom_types > 0).sum(1) <= 20).all()
    assert all(":mp-" in i for i in arrays.ids)  # material ids kept for provenance


GOOD_CIF = """data_NaCl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na Na0 0.0 0.0 0.0 1
  Cl Cl1 0.5 0.5 0.5 1
"""


def write_csv(path: Path, cifs: list[str]) -> Path:
    import pandas as pd

    pd.DataFrame({"material_id": [f"id-{i}" for i in range(len(cifs))], "cif": cifs}).to_csv(path)
    return path


def test_malformed_cif_row_is_named_or_skipped(tmp_path):
    pytest.importorskip("pymatgen")
    from unite.data.crystals import read_cif_csv

    csv = write_csv(tmp_path / "rows.csv", [GOOD_CIF, "data_broken\n_cell_length_a oops\n", GOOD_CIF])
    with pytest.raises(UserError) as err:
        read_cif_csv(csv, max_atoms=20)
    assert "row 1" in str(err.value) and "id-1" in str(err.value) and "rows.csv" in str(err.value)
    arrays = read_cif_csv(csv, max_atoms=20, on_corrupt="skip")
    assert len(arrays) == 2 and len(arrays.skipped) == 1 and "row 1" in arrays.skipped[0]


def test_too_many_atoms_is_reported(tmp_path):
    pytest.importorskip("pymatgen")
    from unite.data.crystals import read_cif_csv

    csv = write_csv(tmp_path / "rows.csv", [GOOD_CIF])
    with pytest.raises(UserError, match="more than data.max_atoms = 1"):
        read_cif_csv(csv, max_atoms=1)


def test_crystal_dataset_split_and_prepared_file_round_trip(tmp_path):
    pytest.importorskip("pymatgen")
    import pandas as pd

    from unite.data import build_dataset
    from unite.data.prepare import prepare

    folder = tmp_path / "perov_small"
    folder.mkdir()
    pd.read_csv(PEROV / "val.csv.gz", nrows=30).to_csv(folder / "val.csv", index=False)
    pd.read_csv(PEROV / "test.csv.gz", nrows=30).to_csv(folder / "test.csv", index=False)
    cfg = crystal_cfg(folder)
    sets = {s: build_dataset(cfg, s) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [48, 6, 6]  # pooled 80/10/10
    ids = [set(sets[s].ids) for s in sets]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    x, y = sets["train"][0]
    assert set(x) == {"atom_types", "frac_coords", "lengths", "angles"} and y == 0
    assert x["atom_types"].shape == (20,) and x["frac_coords"].shape == (20, 3)

    out = tmp_path / "perov_small.npz"
    meta = prepare(cfg, out)
    assert meta["counts"] == {"train": 48, "val": 6, "test": 6} and meta["format_version"] == 1
    from_file = build_dataset(crystal_cfg(out), "val")
    for key in x:
        torch.testing.assert_close(from_file.tensors[key], sets["val"].tensors[key])


def test_cdvae_split_files_are_used_as_given(tmp_path):
    pytest.importorskip("pymatgen")
    from unite.data.crystals import CrystalDataset

    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        write_csv(tmp_path / f"{split}.csv", [GOOD_CIF] * n)
    assert [len(CrystalDataset(crystal_cfg(tmp_path), s)) for s in ("train", "val", "test")] == [3, 2, 1]


def test_gzipped_csv_folder_gives_the_same_splits_as_plain(tmp_path):
    pytest.importorskip("pymatgen")
    import pandas as pd

    from unite.data.crystals import load_splits

    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    packed.mkdir()
    for name in ("val", "test"):
        rows = pd.read_csv(PEROV / f"{name}.csv.gz", nrows=15)
        rows.to_csv(plain / f"{name}.csv", index=False)
        rows.to_csv(packed / f"{name}.csv.gz", index=False)  # pandas gzips by suffix
    a, _ = load_splits(crystal_cfg(plain))
    b, prov = load_splits(crystal_cfg(packed))
    assert prov["layout"].startswith("pooled")
    for split in ("train", "val", "test"):
        assert len(a[split]) == len(b[split]) > 0
        np.testing.assert_array_equal(a[split].atom_types, b[split].atom_types)
        np.testing.assert_array_equal(a[split].frac_coords, b[split].frac_coords)
        # same rows in the same order: only the file name in the id carries the suffix
        assert [i.replace(".csv.gz", ".csv") for i in b[split].ids] == list(a[split].ids)


def test_gzipped_cdvae_split_files_are_found(tmp_path):
    pytest.importorskip("pymatgen")
    from unite.data.crystals import CrystalDataset

    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        write_csv(tmp_path / f"{split}.csv.gz", [GOOD_CIF] * n)
    assert [len(CrystalDataset(crystal_cfg(tmp_path), s)) for s in ("train", "val", "test")] == [3, 2, 1]


def test_csv_in_both_plain_and_gzipped_form_is_refused(tmp_path):
    from unite.data.crystals import CrystalDataset

    write_csv(tmp_path / "val.csv", [GOOD_CIF])
    write_csv(tmp_path / "val.csv.gz", [GOOD_CIF])
    with pytest.raises(UserError, match="both val.csv and val.csv.gz"):
        CrystalDataset(crystal_cfg(tmp_path), "train")


def test_provenance_of_repository_data_does_not_name_the_clone(monkeypatch, tmp_path):
    from unite.data.crystals import display_path

    monkeypatch.chdir(tmp_path)
    assert display_path(PEROV) == "data/perov_5"  # the same wherever the clone sits
    assert display_path(tmp_path) == str(tmp_path.resolve())  # outside: absolute


def test_missing_crystal_root_is_a_user_error(tmp_path):
    from unite.data.crystals import CrystalDataset

    with pytest.raises(UserError, match="not found"):
        CrystalDataset(crystal_cfg(tmp_path / "absent"), "train")


def test_default_root_resolves_from_repo_root(monkeypatch, tmp_path):
    from unite.data.crystals import resolve_root

    monkeypatch.chdir(tmp_path)  # not the repo root: the fallback must find it
    assert resolve_root("data/perov_5").is_dir()


def test_prepare_command_dispatches_on_kind(tmp_path, capsys):
    pytest.importorskip("pymatgen")
    import yaml

    from unite.cli import main

    folder = tmp_path / "csvs"
    folder.mkdir()
    write_csv(folder / "all.csv", [GOOD_CIF] * 10)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"data": {"kind": "crystals", "root": str(folder),
                                                 "num_classes": 1, "max_atoms": 20}}))
    out = tmp_path / "prepared.npz"
    main(["prepare", "--config", str(cfg_file), "--out", str(out)])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["dataset"] == "crystals" and summary["counts"]["train"] == 8
    assert out.is_file()
    shutil.rmtree(folder)
