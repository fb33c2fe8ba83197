"""Crystal metrics behave on real perovskites: ground truth is structurally valid and matches
itself, scrambled lattices do not match, collapsed cells and overlapping atoms are invalid,
and the SMACT test follows CDVAE/ADiT on known compositions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymatgen")
pytest.importorskip("smact")

from unite.errors import UserError  # noqa: E402
from unite.metrics import crystals as C  # noqa: E402

# the offline crystal data ships in the repository (data/README.md): never skipped
PEROV = Path(__file__).resolve().parents[1] / "data" / "perov_5"
MP20_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mp_20_sample"
N = 80


@pytest.fixture(scope="module")
def perov():
    from unite.data.crystals import read_cif_csv

    a = read_cif_csv(PEROV / "test.csv.gz", max_atoms=20, limit=N)
    return {f: getattr(a, f) for f in C.FIELDS}


def scrambled(x: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = dict(x)
    out["lengths"] = (x["lengths"] * rng.uniform(0.6, 1.6, x["lengths"].shape)).astype(np.float32)
    out["angles"] = (x["angles"] + rng.uniform(-25, 25, x["angles"].shape)).astype(np.float32)
    return out


def test_ground_truth_is_valid_unique_and_matches_itself(perov):
    g = C.generation_metrics(*(perov[f] for f in C.FIELDS))
    assert g["struct_validity"] == 1.0
    assert g["comp_validity"] >= 0.9
    assert g["uniqueness"] >= 0.95
    r = C.reconstruction_metrics(perov, perov)
    assert r["match_rate_unfiltered"] == 1.0 and r["rmsd_unfiltered"] < 1e-6
    assert r["match_rate"] == pytest.approx(r["orig_validity"])  # ADiT: valid pairs only


def test_scrambled_lattices_do_not_match(perov):
    r = C.reconstruction_metrics(perov, scrambled(perov))
    assert r["match_rate_unfiltered"] < 0.2


def test_small_coordinate_noise_still_matches_with_small_rmsd(perov):
    noisy = dict(perov)
    noise = np.random.default_rng(0).normal(0, 0.005, perov["frac_coords"].shape)
    noisy["frac_coords"] = np.mod(perov["frac_coords"] + noise * (perov["atom_types"] > 0)[..., None], 1)
    r = C.reconstruction_metrics(perov, noisy.copy())
    assert r["match_rate_unfiltered"] > 0.9 and 0 < r["rmsd_unfiltered"] < 0.05


def test_collapsed_cells_are_structurally_invalid(perov):
    squeezed = dict(perov, lengths=(perov["lengths"] * 0.1).astype(np.float32))
    assert C.generation_metrics(*(squeezed[f] for f in C.FIELDS))["struct_validity"] == 0.0


def nacl(frac_cl=(0.5, 0.5, 0.5), length=5.64, angles=(90.0, 90.0, 90.0)):
    types = np.zeros(20, np.int64)
    types[:2] = [11, 17]
    frac = np.zeros((20, 3), np.float32)
    frac[1] = frac_cl
    return types, frac, np.full(3, length, np.float32), np.array(angles, np.float32)


def test_validity_rules_on_hand_made_cells():
    assert C.structure_valid(C.to_structure(*nacl()))
    assert not C.structure_valid(C.to_structure(*nacl(frac_cl=(0.02, 0.0, 0.0))))  # 0.11 A apart
    assert not C.structure_valid(C.to_structure(*nacl(frac_cl=(0.98, 0.0, 0.0))))  # via periodicity
    assert C.to_structure(*nacl(angles=(90.0, 40.0, 90.0))) is None  # outside (50, 130) degrees
    types, frac, lengths, angles = nacl()
    assert C.to_structure(np.zeros_like(types), frac, lengths, angles) is None  # no atoms
    assert C.to_structure(types, frac, lengths * np.nan, angles) is None


@pytest.mark.parametrize(
    "composition, valid",
    [
        (((11, 1), (17, 1)), True),  # NaCl
        (((11, 1), (17, 2)), False),  # NaCl2: no neutral oxidation states
        (((26, 4),), True),  # single element
        (((29, 1), (30, 1)), True),  # CuZn: all metals (alloy)
        (((56, 1), (22, 1), (8, 3)), True),  # BaTiO3
        (((12, 1), (17, 3)), False),  # MgCl3: no charge-neutral oxidation states
    ],
)
def test_smact_composition_validity(composition, valid):
    assert C.composition_valid(composition) is valid


def test_mp20_fixture_rows_are_structurally_valid():
    from unite.data.crystals import read_cif_csv

    a = read_cif_csv(MP20_SAMPLE / "mp_20_rows.csv", max_atoms=20)
    _, sv, _ = C.validity(a.atom_types, a.frac_coords, a.lengths, a.angles)
    assert sv.all()


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    C.add_arguments(parser)
    C.run(parser.parse_args(list(argv)))


def test_command_detects_file_kind_and_writes_contract_json(perov, tmp_path):
    meta = np.str_(json.dumps({"experiment": "perov-test", "train_steps": 3}))
    recon = tmp_path / "recon.npz"
    s = scrambled(perov)
    np.savez(recon, meta=meta, **{f"orig_{f}": perov[f] for f in C.FIELDS},
             **{f"recon_{f}": perov[f] if f != "lengths" else s[f] for f in C.FIELDS})
    run_cli("--samples", str(recon), "--out", str(tmp_path / "r.json"))
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r) == {"experiment", "kind", "metrics", "scale", "flags", "provenance"}
    assert r["kind"] == "recon_crystals" and r["scale"]["num_samples"] == N
    assert r["metrics"]["match_rate"] < 0.5

    gen = tmp_path / "gen.npz"
    np.savez(gen, meta=meta, labels=np.zeros(N, np.int64), **perov)
    ref = tmp_path / "ref.npz"
    np.savez(ref, **{f: perov[f][: N // 2] for f in C.FIELDS})
    run_cli("--samples", str(gen), "--reference", str(ref), "--out", str(tmp_path / "g.json"))
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["kind"] == "gen_crystals" and g["metrics"]["struct_validity"] == 1.0
    assert 0.35 < g["metrics"]["novelty"] < 0.65
    assert any("10000" in f for f in g["flags"])


def test_bad_crystal_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, atom_types=np.zeros((2, 20)), frac_coords=np.zeros((2, 20, 3)),
             lengths=np.zeros((2, 3)), angles=np.zeros((2, 4)))
    with pytest.raises(UserError, match="angles"):
        C.evaluate_file(bad)
