"""Crystal metrics in the ADiT / CDVAE protocol (REFERENCE section 4).

``python -m unite evaluate crystals --samples F [--reference F] --out JSON``

* **Structural validity**: every periodic (minimum-image) distance between two sites
  > 0.5 Angstrom and cell volume > 0.1 A^3.
* **Compositional validity**: SMACT charge neutrality + Pauling electronegativity test, with
  single-element and all-metal (alloy) compositions valid, on the SMACT-default ("smact14")
  oxidation states that CDVAE/ADiT used (SMACT >= 3 defaults to the ICSD-24 set instead and
  changed ``neutral_ratios`` to return a list; ``smact.screening.smact_validity`` takes the set
  as an argument). Compositions with more than 1e7 oxidation-state combinations count as
  invalid, as in ADiT.
* **Overall validity**: both. As in ADiT's ``array_dict_to_crystal`` (from FlowMM), arrays whose
  lattice angles fall outside (50, 130) degrees, or that cannot form a lattice, count as
  invalid.
* **Match rate / RMSD** (reconstruction files, ``orig_*``/``recon_*``): pymatgen
  ``StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)``; as in ADiT only pairs whose
  prediction and ground truth are both valid can match; RMSD (the matcher's normalised
  rms distance) is averaged over matches. ``match_rate_unfiltered`` drops the validity gate.
* **Uniqueness** (generated files): StructureMatcher groups of the valid structures / valid.
  **Novelty** (with ``--reference``): valid structures that match no reference structure.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from unite.artifacts import result, scale_from_meta, write_result
from unite.errors import UserError
from unite.metrics import inputs
from unite.metrics.molecules import load_npz

PAPER_NUM_SAMPLES = 10_000
FIELDS = ("atom_types", "frac_coords", "lengths", "angles")
MIN_DISTANCE = 0.5  # Angstrom
MIN_VOLUME = 0.1  # A^3
ANGLE_RANGE = (50.0, 130.0)  # degrees (FlowMM/ADiT "safe crystal")
MAX_OX_COMBINATIONS = 1e7
MATCHER_TOLERANCES = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10}


def matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**MATCHER_TOLERANCES)


def to_structure(types, frac, lengths, angles):
    """Slot arrays of one crystal -> pymatgen Structure (None if it cannot be a crystal)."""
    from pymatgen.core import Lattice, Structure

    keep = types > 0
    values = np.concatenate([frac[keep].ravel(), lengths, angles])
    if not keep.any() or not np.isfinite(values).all() or (lengths <= 0).any():
        return None
    if not ((angles > ANGLE_RANGE[0]) & (angles < ANGLE_RANGE[1])).all():
        return None
    try:
        lattice = Lattice.from_parameters(*map(float, lengths), *map(float, angles))
        if not np.isfinite(lattice.matrix).all():
            return None
        return Structure(lattice, [int(z) for z in types[keep]], frac[keep].astype(np.float64))
    except Exception:  # impossible angle triplets, unknown elements
        return None


def structure_valid(structure) -> bool:
    """All pairwise periodic distances > 0.5 A and volume > 0.1 A^3 (CDVAE/ADiT)."""
    if structure is None or not structure.volume > MIN_VOLUME:
        return False
    dist = structure.distance_matrix
    if len(structure) > 1:
        dist = dist + np.eye(len(structure)) * (MIN_DISTANCE + 10.0)
        return bool(dist.min() > MIN_DISTANCE)
    return True


@lru_cache(maxsize=100_000)
def composition_valid(composition: tuple[tuple[int, int], ...]) -> bool:
    """SMACT charge neutrality + Pauling test on ((Z, count), ...), smact14 oxidation states."""
    import smact
    from smact.screening import smact_validity

    symbols = [_symbol(z) for z, _ in composition]
    if len(symbols) == 1:
        return True
    try:
        elements = [smact.Element(s) for s in symbols]
        combos = np.prod([max(len(e.oxidation_states_smact14 or []), 1) for e in elements])
        if combos > MAX_OX_COMBINATIONS:
            return False
        formula = "".join(f"{s}{c}" for s, (_, c) in zip(symbols, composition))
        return bool(smact_validity(formula, use_pauling_test=True, include_alloys=True,
                                   oxidation_states_set="smact14"))
    except Exception:  # elements SMACT does not know
        return False


def _symbol(z: int) -> str:
    from pymatgen.core import Element

    return Element.from_Z(int(z)).symbol


def composition_key(types: np.ndarray) -> tuple[tuple[int, int], ...]:
    counts = Counter(int(z) for z in types if z > 0)
    return tuple(sorted(counts.items()))


def validity(types, frac, lengths, angles, desc: str = "validity"):
    """-> (structures (None where unbuildable), struct_valid, comp_valid) arrays."""
    from tqdm import tqdm

    structures, sv, cv = [], [], []
    for t, f, ln, an in tqdm(zip(types, frac, lengths, angles), total=len(types), desc=desc,
                             mininterval=2.0):
        s = to_structure(t, f, ln, an)
        structures.append(s)
        sv.append(structure_valid(s))
        cv.append(s is not None and composition_valid(composition_key(t)))
    return structures, np.array(sv, dtype=bool), np.array(cv, dtype=bool)


def generation_metrics(types, frac, lengths, angles, reference=None) -> dict:
    """Structural / compositional / overall validity, uniqueness, optional novelty."""
    structures, sv, cv = validity(types, frac, lengths, angles)
    valid = sv & cv
    n = len(structures)
    metrics = {
        "num_samples": n,
        "struct_validity": float(sv.mean()) if n else float("nan"),
        "comp_validity": float(cv.mean()) if n else float("nan"),
        "validity": float(valid.mean()) if n else float("nan"),
        "mean_atoms": float((types > 0).sum(1).mean()) if n else float("nan"),
    }
    good = [s for s, v in zip(structures, valid) if v]
    if good:
        groups = matcher().group_structures(good)
        metrics["uniqueness"] = len(groups) / len(good)
        if reference is not None:
            metrics["novelty"] = novelty(good, reference)
    else:
        metrics["uniqueness"] = float("nan")
    return metrics


def novelty(structures, reference) -> float:
    """Fraction of structures that match no reference structure of the same composition."""
    from tqdm import tqdm

    by_comp: dict = {}
    for r in reference:
        by_comp.setdefault(r.composition.reduced_formula, []).append(r)
    m = matcher()
    novel = 0
    for s in tqdm(structures, desc="novelty", mininterval=2.0):
        candidates = by_comp.get(s.composition.reduced_formula, [])
        novel += not any(m.fit(s, r) for r in candidates)
    return novel / len(structures)


def reconstruction_metrics(orig: dict, recon: dict) -> dict:
    """Match rate and RMSD with StructureMatcher (ADiT: both crystals valid), + diagnostics."""
    from tqdm import tqdm

    gt, gsv, gcv = validity(*(orig[f] for f in FIELDS), desc="validity (orig)")
    pr, psv, pcv = validity(*(recon[f] for f in FIELDS), desc="validity (recon)")
    gate = gsv & gcv & psv & pcv
    m = matcher()
    rms = []
    for g, p in tqdm(zip(gt, pr), total=len(gt), desc="match", mininterval=2.0):
        r = None
        if g is not None and p is not None:
            try:
                r = m.get_rms_dist(p, g)
            except Exception:  # matcher failures on odd lattices: no match
                r = None
        rms.append(float("inf") if r is None else float(r[0]))
    rms = np.array(rms)
    found = np.isfinite(rms)
    matched = found & gate
    n = len(rms)
    nan = float("nan")
    return {
        "num_pairs": n,
        "match_rate": float(matched.mean()) if n else nan,
        "rmsd": float(rms[matched].mean()) if matched.any() else nan,
        "match_rate_unfiltered": float(found.mean()) if n else nan,
        "rmsd_unfiltered": float(rms[found].mean()) if found.any() else nan,
        "orig_validity": float((gsv & gcv).mean()) if n else nan,
        "recon_struct_validity": float(psv.mean()) if n else nan,
        "recon_comp_validity": float(pcv.mean()) if n else nan,
        "recon_validity": float((psv & pcv).mean()) if n else nan,
        "slot_types_exact": float((orig["atom_types"] == recon["atom_types"]).all(1).mean())
        if n else nan,
    }


# -- files ----------------------------------------------------------------------------------
def check_fields(arrays: dict, path, prefix: str = "") -> dict:
    missing = [prefix + f for f in FIELDS if prefix + f not in arrays]
    if missing:
        raise UserError(
            f"{path} lacks {', '.join(missing)}: expected crystal samples (atom_types, "
            "frac_coords, lengths, angles) or a reconstruction file (orig_*/recon_*)"
        )
    out = {f: arrays[prefix + f] for f in FIELDS}
    if out["atom_types"].ndim != 2:
        raise UserError(f"{path}: {prefix}atom_types has shape {out['atom_types'].shape}, "
                        "expected (N, slots)")
    n, slots = out["atom_types"].shape
    shapes = {"frac_coords": (n, slots, 3), "lengths": (n, 3), "angles": (n, 3)}
    for f, shape in shapes.items():
        if out[f].shape != shape:
            raise UserError(f"{path}: {prefix}{f} has shape {out[f].shape}, expected {shape}")
    inputs.check_count(n, path, "crystals")
    inputs.check_atom_types(out["atom_types"], path, prefix + "atom_types")
    for f in ("frac_coords", "lengths", "angles"):
        inputs.check_finite(out[f], path, prefix + f, "crystals")
    return out


def unbuildable(lengths: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Per crystal: no cell can be built (a length <= 0, an angle outside ANGLE_RANGE, or an
    angle triple with no real volume); such crystals count as invalid, as in ADiT."""
    cos = np.cos(np.radians(angles.astype(np.float64)))
    gram = 1 - (cos**2).sum(1) + 2 * cos.prod(1)  # (V / abc)^2
    outside = ((angles <= ANGLE_RANGE[0]) | (angles >= ANGLE_RANGE[1])).any(1)
    return (lengths <= 0).any(1) | outside | (gram <= 1e-12)


def lattice_flags(arrays: dict, what: str) -> list[str]:
    bad = int(unbuildable(arrays["lengths"], arrays["angles"]).sum())
    if not bad:
        return []
    return [f"{inputs.INPUT_FLAG}{bad} of {len(arrays['lengths'])} {what} have no buildable cell "
            f"(a lattice length <= 0, an angle outside {ANGLE_RANGE[0]:g}-{ANGLE_RANGE[1]:g} "
            "degrees or an impossible angle triple): counted invalid"]


def reference_structures(path: str | Path) -> list:
    """Training structures from a sample-format .npz or a prepared crystals .npz (train_*)."""
    arrays, _ = load_npz(path)
    if "train_atom_types" in arrays:
        arrays = {f: arrays[f"train_{f}"] for f in FIELDS}
    ref = check_fields(arrays, path)
    structures = [to_structure(*(ref[f][i] for f in FIELDS)) for i in range(len(ref["lengths"]))]
    return [s for s in structures if s is not None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", required=True,
                        help="generated crystals (.npz) or a reconstruction file (orig_*/recon_*)")
    parser.add_argument("--reference", default=None,
                        help="training set for novelty: prepared crystals .npz or sample-format .npz")
    parser.add_argument("--out", required=True, help="metrics JSON")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N (0 = all)")


def evaluate_file(samples: str | Path, reference: str | Path | None = None, limit: int = 0) -> dict:
    from unite import provenance as pv

    arrays, meta = load_npz(samples)
    recon = all(f"orig_{f}" in arrays for f in FIELDS)
    sl = slice(None) if limit <= 0 else slice(0, limit)
    flags: list[str] = []
    if recon:
        orig = {k: v[sl] for k, v in check_fields(arrays, samples, "orig_").items()}
        pred = {k: v[sl] for k, v in check_fields(arrays, samples, "recon_").items()}
        flags += lattice_flags(orig, "original crystals") + lattice_flags(pred, "reconstructions")
        metrics = reconstruction_metrics(orig, pred)
        n = metrics["num_pairs"]
        if reference is not None:
            flags.append("--reference is ignored for a reconstruction file")
    else:
        gen = {k: v[sl] for k, v in check_fields(arrays, samples).items()}
        flags += lattice_flags(gen, "crystals") + inputs.empty_sample_flag(gen["atom_types"], "crystals")
        ref = reference_structures(reference) if reference is not None else None
        metrics = generation_metrics(*(gen[f] for f in FIELDS), reference=ref)
        n = metrics["num_samples"]
        if n < PAPER_NUM_SAMPLES:
            flags.append(f"{n} generated crystals, fewer than the paper's {PAPER_NUM_SAMPLES}: "
                         "rates are noisier and uniqueness is not comparable")
        if ref is None:
            flags.append("no --reference: novelty not computed")
    scale = scale_from_meta(meta)
    scale["matcher"] = dict(MATCHER_TOLERANCES)
    scale["num_samples"] = n
    scale["protocol"] = "ADiT/CDVAE crystals"
    kind = "recon_crystals" if recon else "gen_crystals"
    prov = provenance_of(kind, samples, meta, None if recon else reference, limit)
    return result(
        experiment=str(meta.get("experiment", Path(samples).stem)), kind=kind,
        metrics=metrics, scale=scale, flags=flags + pv.missing_flag(prov), provenance=prov,
    )


def provenance_of(kind: str, samples, meta: dict, reference, limit: int) -> dict:
    from unite import provenance as pv

    extra = {"limit": limit} if limit > 0 else {}
    if kind == "gen_crystals":
        extra |= {"novelty_reference": str(reference) if reference else None,
                  "novelty_reference_sha256": pv.sha256_or_none(reference)}
    return pv.build(
        kind, **pv.from_file_meta(meta, samples), **extra,
        protocol=(f"ADiT/CDVAE crystals: distances > {MIN_DISTANCE} A, volume > {MIN_VOLUME} A^3, "
                  f"angles in {ANGLE_RANGE}, SMACT (smact14) + Pauling; StructureMatcher"
                  f"({', '.join(f'{k}={v}' for k, v in MATCHER_TOLERANCES.items())})"),
        toolchain=pv.toolchain("pymatgen", "smact"),
    )


def run(args: argparse.Namespace) -> None:
    obj = evaluate_file(args.samples, args.reference, args.limit)
    write_result(args.out, obj)
    print(json.dumps({"out": args.out, "kind": obj["kind"], **obj["metrics"]}))
