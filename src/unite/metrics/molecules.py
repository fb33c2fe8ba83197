"""QM9 metrics in the ADiT protocol (REFERENCE section 4).

``python -m unite evaluate molecules --samples F [--reference F] --out JSON``

* A reconstruction file (``orig_atom_types``/``orig_positions`` + ``recon_*``, written by
  ``unite reconstruct``) gets the **match rate**: pymatgen ``MoleculeMatcher`` finds a finite
  RMSD only when the OpenBabel-perceived InChI of both molecules agree; **RMSD** (Angstrom)
  is averaged over the matches. The matcher assigns symmetry-equivalent hydrogens greedily
  after a heavy-atom-only alignment, which leaves a non-zero RMSD for a few identical small
  molecules; ``rmsd_best`` also reports the mean of min(matcher RMSD, Kabsch RMSD in slot
  order when the slot types agree), which is 0 for an exact reconstruction.
* A generated-samples file (``atom_types``, ``positions``) gets **validity** in ADiT's protocol
  (the default, ``--validity-protocol adit``): pymatgen ``Molecule.to(fmt="pdb")`` (OpenBabel
  perceives the bonds from the 3D coordinates), RDKit ``MolFromPDBBlock(removeHs=False)`` (the
  parser behind ADiT's ``MolFromPDBFile``, with ADiT's QM9 setting; sanitised), valid = a
  molecule comes back and the isomeric SMILES of it and of its largest fragment can be
  written. **validity_connected** is the stricter "valid and one fragment". Other parses are
  named variants that the tables label: ``adit-removehs`` (``removeHs=True``: hydrogens with
  impossible valences are dropped before sanitising, so it accepts more, most of all on
  distorted geometry) and ``sdf`` (OpenBabel SDF keeps bond orders). **Uniqueness**: distinct
  largest-fragment SMILES over valid molecules; **novelty** (with ``--reference``, the
  training set, parsed the same way): unique SMILES absent from the reference, over valid.

OpenBabel prints kekulisation/valence warnings to stderr for many molecules: that is normal.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from unite.artifacts import read_npz, result, scale_from_meta, write_result
from unite.errors import UserError
from unite.metrics import inputs

PAPER_NUM_SAMPLES = 10_000  # generated molecules in the paper's protocol
QM9_TEST_SIZE = 12_831
FIELDS = ("atom_types", "positions")


def _quiet_chemistry_logs() -> None:
    from openbabel import openbabel
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    openbabel.obErrorLog.SetOutputLevel(0)


def to_molecule(types: np.ndarray, positions: np.ndarray):
    """One slot array -> pymatgen Molecule of its occupied slots (None if there are none)."""
    from pymatgen.core import Molecule

    keep = types > 0
    if not keep.any() or not np.isfinite(positions[keep]).all():
        return None
    return Molecule([int(z) for z in types[keep]], positions[keep].astype(np.float64))


# name -> (pymatgen/OpenBabel output format, RDKit removeHs); the first is the default
VALIDITY_PROTOCOLS: dict[str, tuple[str, bool]] = {
    "adit": ("pdb", False),  # ADiT's QM9 protocol
    "adit-removehs": ("pdb", True),  # this project's parse before ADiT's was matched
    "sdf": ("sdf", False),  # bond orders kept (not a protocol of any paper)
}
DEFAULT_VALIDITY = "adit"


def check_validity_protocol(name: str) -> str:
    if name not in VALIDITY_PROTOCOLS:
        raise UserError(f"unknown validity protocol {name!r}; choose one of "
                        f"{', '.join(VALIDITY_PROTOCOLS)}")
    return name


def validity_protocol_text(name: str) -> str:
    fmt, remove_hs = VALIDITY_PROTOCOLS[name]
    reader = "MolFromPDBBlock" if fmt == "pdb" else "MolFromMolBlock"
    return (f"{name}: pymatgen Molecule.to(fmt={fmt!r}) (OpenBabel bonds) -> RDKit {reader}("
            f"removeHs={remove_hs}, sanitize=True); valid = SMILES of the molecule and of its "
            "largest fragment can be written")


def to_rdkit(molecule, protocol: str = DEFAULT_VALIDITY, sanitize: bool = True):
    """pymatgen Molecule -> OpenBabel bond perception -> RDKit molecule (None = invalid)."""
    from rdkit import Chem

    if molecule is None:
        return None
    fmt, remove_hs = VALIDITY_PROTOCOLS[protocol]
    try:
        text = molecule.to(fmt=fmt)
        if fmt == "pdb":
            return Chem.MolFromPDBBlock(text, removeHs=remove_hs, sanitize=sanitize)
        return Chem.MolFromMolBlock(text, removeHs=remove_hs, sanitize=sanitize)
    except Exception:  # OpenBabel/RDKit raise on degenerate geometry: an invalid molecule
        return None


def largest_fragment(mol):
    from rdkit import Chem

    frags = Chem.GetMolFrags(mol, asMols=True)  # sanitised fragments, as ADiT's
    return max(frags, default=mol, key=lambda f: f.GetNumAtoms())


def canonical_smiles(mol) -> str:
    """Isomeric canonical SMILES of the largest fragment (ADiT's uniqueness key)."""
    from rdkit import Chem

    return Chem.MolToSmiles(largest_fragment(mol), isomericSmiles=True)


def parse(types: np.ndarray, positions: np.ndarray, protocol: str = DEFAULT_VALIDITY):
    """One molecule -> (SMILES or None when invalid, number of fragments or 0)."""
    from rdkit import Chem

    mol = to_rdkit(to_molecule(types, positions), protocol)
    if mol is None:
        return None, 0
    try:
        Chem.MolToSmiles(mol, isomericSmiles=True)  # ADiT writes the whole molecule first
        return canonical_smiles(mol), len(Chem.GetMolFrags(mol))
    except Exception:  # RDKit cannot write it: invalid, as in ADiT
        return None, 0


def smiles_of(types: np.ndarray, positions: np.ndarray, protocol: str = DEFAULT_VALIDITY,
              desc: str = "molecules"):
    """-> list of (canonical SMILES or None for invalid, single fragment?) per molecule."""
    from tqdm import tqdm

    _quiet_chemistry_logs()
    out = []
    for t, p in tqdm(zip(types, positions), total=len(types), desc=desc, mininterval=2.0):
        smiles, fragments = parse(t, p, protocol)
        out.append((smiles, fragments == 1))
    return out


def generation_metrics(types, positions, reference: set[str] | None = None,
                       protocol: str = DEFAULT_VALIDITY) -> dict:
    """Validity (and valid + connected), uniqueness and (with a reference SMILES set)
    novelty, as fractions."""
    parsed = smiles_of(types, positions, protocol, desc="validity")
    n = len(parsed)
    valid = [s for s, _ in parsed if s is not None]
    unique = set(valid)
    metrics = {
        "num_samples": n,
        "num_valid": len(valid),
        "validity": len(valid) / n if n else float("nan"),
        "validity_connected": sum(s is not None and c for s, c in parsed) / n if n else float("nan"),
        "uniqueness": len(unique) / len(valid) if valid else float("nan"),
        "mean_atoms": float((types > 0).sum(1).mean()) if n else float("nan"),
    }
    if reference is not None:
        novel = unique - reference
        metrics["novelty"] = len(novel) / len(valid) if valid else float("nan")
        metrics["reference_size"] = len(reference)
    return metrics


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD of two (n, 3) point sets in the given correspondence, after optimal superposition."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    u, _, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.sqrt(((b @ rot - a) ** 2).sum(1).mean()))


def reconstruction_metrics(orig_types, orig_pos, recon_types, recon_pos) -> dict:
    """Match rate and RMSD (MoleculeMatcher, ADiT) + slot-order diagnostics."""
    from pymatgen.analysis.molecule_matcher import MoleculeMatcher
    from tqdm import tqdm

    _quiet_chemistry_logs()
    matcher = MoleculeMatcher(tolerance=0.01)  # tolerance only affects fit(); get_rmsd is used
    rmsd, best = [], []
    same_types = 0
    for ot, op, rt, rp in tqdm(zip(orig_types, orig_pos, recon_types, recon_pos),
                               total=len(orig_types), desc="match", mininterval=2.0):
        slot_equal = bool(np.array_equal(ot, rt))
        same_types += slot_equal
        gt, pred = to_molecule(ot, op), to_molecule(rt, rp)
        r = float("inf")
        if gt is not None and pred is not None:
            try:
                r = float(matcher.get_rmsd(pred, gt))
            except Exception:  # InChI/alignment failures on odd geometry: no match
                r = float("inf")
        rmsd.append(r)
        if np.isfinite(r) and slot_equal:
            keep = ot > 0
            r = min(r, kabsch_rmsd(op[keep].astype(np.float64), rp[keep].astype(np.float64)))
        best.append(r)
    rmsd, best = np.array(rmsd), np.array(best)
    matched = np.isfinite(rmsd)
    n = len(rmsd)
    return {
        "num_pairs": n,
        "match_rate": float(matched.mean()) if n else float("nan"),
        "rmsd": float(rmsd[matched].mean()) if matched.any() else float("nan"),
        "rmsd_best": float(best[matched].mean()) if matched.any() else float("nan"),
        "slot_types_exact": same_types / n if n else float("nan"),
    }


# -- files ----------------------------------------------------------------------------------
def load_npz(path: str | Path) -> tuple[dict, dict]:
    """Arrays and meta of a sample/reconstruction/reference file (unreadable: UserError)."""
    return read_npz(path, "file")


def is_reconstruction(arrays: dict) -> bool:
    return all(f"orig_{f}" in arrays and f"recon_{f}" in arrays for f in FIELDS)


def check_fields(arrays: dict, path, prefix: str = "") -> None:
    missing = [prefix + f for f in FIELDS if prefix + f not in arrays]
    if missing:
        raise UserError(
            f"{path} lacks {', '.join(missing)}: expected molecule samples (atom_types, positions) "
            "or a reconstruction file (orig_*/recon_*)"
        )
    t, p = arrays[prefix + "atom_types"], arrays[prefix + "positions"]
    if t.ndim != 2 or p.shape != (*t.shape, 3):
        raise UserError(f"{path}: {prefix}atom_types {t.shape} and {prefix}positions {p.shape} "
                        "should be (N, slots) and (N, slots, 3)")
    inputs.check_count(len(t), path, "molecules")
    inputs.check_atom_types(t, path, prefix + "atom_types")
    inputs.check_finite(p, path, prefix + "positions", "molecules")


def reference_smiles(path: str | Path, protocol: str = DEFAULT_VALIDITY) -> set[str]:
    """Training-set SMILES from a .txt (one per line), a sample-format .npz, or the prepared
    QM9 array file (its train split), parsed with the same validity protocol."""
    path = Path(path)
    if path.suffix == ".txt":
        if not path.is_file():
            raise UserError(f"reference file not found: {path}")
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    arrays, _ = load_npz(path)
    check_fields(arrays, path)
    types, pos = arrays["atom_types"], arrays["positions"]
    if "train_idx" in arrays:  # the prepared QM9 file
        types, pos = types[arrays["train_idx"]], pos[arrays["train_idx"]]
    return {s for s, _ in smiles_of(types, pos, protocol, desc="reference SMILES") if s is not None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", required=True,
                        help="generated samples (.npz) or a reconstruction file (orig_*/recon_*)")
    parser.add_argument("--reference", default=None,
                        help="training set for novelty: prepared QM9 .npz, sample-format .npz or "
                             ".txt of SMILES")
    parser.add_argument("--out", required=True, help="metrics JSON")
    parser.add_argument("--validity-protocol", choices=tuple(VALIDITY_PROTOCOLS),
                        default=DEFAULT_VALIDITY,
                        help="how bonds reach RDKit (default adit: pymatgen -> PDB -> RDKit with "
                             "removeHs=False, as ADiT's QM9 evaluation); other values are labelled "
                             "variants")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N (0 = all)")


def provenance_of(kind: str, samples, meta: dict, protocol: str, reference) -> dict:
    from unite import provenance as pv

    extra = {"validity_protocol": validity_protocol_text(protocol)} if kind == "gen_molecules" else {}
    if kind == "gen_molecules":
        extra |= {"novelty_reference": str(reference) if reference else None,
                  "novelty_reference_sha256": pv.sha256_or_none(reference)}
    return pv.build(
        kind, **pv.from_file_meta(meta, samples), **extra,
        protocol="ADiT QM9 (match: pymatgen MoleculeMatcher; generation: RDKit validity)",
        toolchain=pv.toolchain("rdkit", "openbabel-wheel", "pymatgen"),
    )


def evaluate_file(samples: str | Path, reference: str | Path | None = None,
                  protocol: str = DEFAULT_VALIDITY, limit: int = 0) -> dict:
    """The metric-file object for one samples/reconstruction file."""
    from unite import provenance as pv

    check_validity_protocol(protocol)
    arrays, meta = load_npz(samples)
    recon = is_reconstruction(arrays)
    prefix = "orig_" if recon else ""
    check_fields(arrays, samples, prefix)
    if recon:
        check_fields(arrays, samples, "recon_")
    sl = slice(None) if limit <= 0 else slice(0, limit)
    flags: list[str] = []
    scale = scale_from_meta(meta)
    if recon:
        metrics = reconstruction_metrics(
            arrays["orig_atom_types"][sl], arrays["orig_positions"][sl],
            arrays["recon_atom_types"][sl], arrays["recon_positions"][sl],
        )
        n = metrics["num_pairs"]
        if n < QM9_TEST_SIZE:
            flags.append(f"{n} reconstructed molecules; the paper's protocol uses the QM9 test "
                         f"split ({QM9_TEST_SIZE})")
        if reference is not None:
            flags.append("--reference is ignored for a reconstruction file")
            reference = None
    else:
        ref = reference_smiles(reference, protocol) if reference is not None else None
        flags += inputs.empty_sample_flag(arrays["atom_types"][sl], "molecules")
        metrics = generation_metrics(arrays["atom_types"][sl], arrays["positions"][sl], ref,
                                     protocol)
        n = metrics["num_samples"]
        if n < PAPER_NUM_SAMPLES:
            flags.append(f"{n} generated molecules, fewer than the paper's {PAPER_NUM_SAMPLES}: "
                         "rates are noisier and uniqueness is not comparable")
        if ref is None:
            flags.append("no --reference: novelty not computed")
        scale["validity_protocol"] = protocol
        if protocol != DEFAULT_VALIDITY:
            flags.append(f"validity protocol {protocol!r}, not ADiT's: not comparable to the paper")
    scale["num_samples"] = n
    scale["protocol"] = "ADiT QM9"
    kind = "recon_molecules" if recon else "gen_molecules"
    prov = provenance_of(kind, samples, meta, protocol, reference)
    if limit > 0:
        prov["limit"] = limit
    return result(
        experiment=str(meta.get("experiment", Path(samples).stem)), kind=kind,
        metrics=metrics, scale=scale, flags=flags + pv.missing_flag(prov), provenance=prov,
    )


def run(args: argparse.Namespace) -> None:
    obj = evaluate_file(args.samples, args.reference, args.validity_protocol, args.limit)
    write_result(args.out, obj)
    print(json.dumps({"out": args.out, "kind": obj["kind"], **obj["metrics"]}))
