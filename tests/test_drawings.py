"""Pictures of generated structures: the molecule grid marks exactly the molecules the validity
metric accepts (and those in one piece), the crystal grid exactly the valid crystals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("rdkit")
pytest.importorskip("pymatgen")

from unite import cli  # noqa: E402
from unite.artifacts import write_sample_file  # noqa: E402
from unite.errors import UserError  # noqa: E402


@pytest.fixture(scope="module")
def molecules():
    from unite.data import qm9

    try:
        folder = qm9.qm9pack_folder()
    except UserError as exc:
        pytest.skip(str(exc))
    types, pos, _ = qm9.read_qm9pack(folder, limit=2000)
    pick = np.random.default_rng(1).choice(len(types), 8, replace=False)
    types, pos = types[pick].astype(np.int64), pos[pick]
    moved = pos + np.random.default_rng(2).normal(0, 0.3, pos.shape) * (types > 0)[..., None]
    return np.concatenate([types, types]), np.concatenate([pos, moved]).astype(np.float32)


def test_molecule_grid_marks_what_the_metric_accepts(molecules, tmp_path, capsys):
    from unite.metrics.molecules import generation_metrics

    types, pos = molecules
    samples = tmp_path / "gen.npz"
    write_sample_file(samples, {"atom_types": types, "positions": pos}, {"experiment": "qm9"})
    cli.main(["draw", "molecules", "--samples", str(samples), "--out", str(tmp_path / "m.png"),
              "--count", "16", "--cols", "4"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    m = generation_metrics(types, pos)
    assert summary["drawn"] == 16
    assert summary["valid"] == m["num_valid"]
    assert summary["valid_connected"] == round(m["validity_connected"] * 16)
    assert summary["valid_connected"] < summary["valid"]  # displaced ones break apart
    with Image.open(tmp_path / "m.png") as img:
        assert img.size[0] == 4 * 220 and img.size[1] > 4 * 220


def crystal(lattice: float, species: list[int], frac: list, slots: int = 4):
    types = np.zeros(slots, np.int64)
    coords = np.zeros((slots, 3), np.float32)
    types[: len(species)] = species
    coords[: len(species)] = frac
    return types, coords, np.full(3, lattice, np.float32), np.full(3, 90.0, np.float32)


def test_crystal_grid_marks_valid_cells(tmp_path, capsys):
    pytest.importorskip("smact")
    from unite.metrics.crystals import FIELDS, generation_metrics

    cells = [
        crystal(4.2, [11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # CsCl-type NaCl: valid
        crystal(4.1, [55, 17], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # CsCl: valid
        crystal(4.0, [11, 17], [[0, 0, 0], [0.01, 0, 0]]),  # atoms 0.04 A apart: invalid
        crystal(4.0, [11, 11], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # Na metal: valid (alloy rule)
    ]
    arrays = {f: np.stack([c[i] for c in cells]) for i, f in enumerate(FIELDS)}
    samples = tmp_path / "gen.npz"
    write_sample_file(samples, arrays, {"experiment": "crystals"})
    cli.main(["draw", "crystals", "--samples", str(samples), "--out", str(tmp_path / "c.png"),
              "--cols", "2"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    m = generation_metrics(*(arrays[f] for f in FIELDS))
    assert summary == {"out": str(tmp_path / "c.png"), "drawn": 4, "valid": 3}
    assert summary["valid"] == round(m["validity"] * 4)
    with Image.open(tmp_path / "c.png") as img:
        assert img.format == "PNG" and min(img.size) > 300


def test_wrong_file_is_a_user_error(tmp_path):
    bad = tmp_path / "images.npz"
    np.savez(bad, images=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(SystemExit) as exc:
        cli.main(["draw", "molecules", "--samples", str(bad), "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2
