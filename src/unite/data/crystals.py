"""Crystals in the CDVAE CSV format (one row per structure, CIF text in a ``cif`` column).

Each structure is parsed with pymatgen, Niggli-reduced and re-expressed in the canonical
orientation of its lattice parameters (as CDVAE and ADiT do), then stored as ``max_atoms``
slots: atomic numbers (0 = empty), fractional coordinates in [0, 1), lattice lengths
(Angstrom) and angles (degrees).

``data.root`` may name
* a folder with ``train.csv`` / ``val.csv`` / ``test.csv`` (the CDVAE splits, e.g. MP20),
* a folder of other CSV files (e.g. the perov_5 val + test rows in the repository's
  ``data/perov_5``): all rows are pooled and split 80 / 10 / 10 after a shuffle seeded by
  ``data.seed``,
* or the ``.npz`` written by ``python -m unite prepare`` from either of the above (fast).

Any of these CSV files may be gzipped (``val.csv.gz``): the repository keeps its copies
compressed so that no file in git exceeds 2 MB, and pandas reads them transparently.

A relative ``data.root`` is looked up from the working directory, then from the repository
root. A row that cannot be parsed (or has more atoms than slots) raises a ``UserError`` naming
the file and row, or, with ``data.on_corrupt: skip``, is skipped and counted.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from unite.atomic import atomic_write
from unite.config import Config
from unite.errors import UserError

FORMAT = "unite-crystals"
FORMAT_VERSION = 1
POOLED_FRACTIONS = (0.8, 0.1)  # train, val; test = the rest
SPLITS = ("train", "val", "test")
FIELDS = ("atom_types", "frac_coords", "lengths", "angles")
CSV_SUFFIXES = (".csv", ".csv.gz")
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class CrystalArrays:
    """Padded arrays of M structures plus what was skipped while reading them."""

    atom_types: np.ndarray  # (M, max_atoms) int16, 0 = empty
    frac_coords: np.ndarray  # (M, max_atoms, 3) float32
    lengths: np.ndarray  # (M, 3) float32, Angstrom
    angles: np.ndarray  # (M, 3) float32, degrees
    ids: np.ndarray  # (M,) str: "<file>:<row>:<material_id>"
    skipped: list[str] = field(default_factory=list)

    def take(self, idx: np.ndarray) -> CrystalArrays:
        return CrystalArrays(*(getattr(self, f)[idx] for f in (*FIELDS, "ids")), self.skipped)

    def __len__(self) -> int:
        return len(self.atom_types)


def resolve_root(root: str) -> Path:
    """A relative path is tried from the working directory, then from the repository root."""
    if not root:
        raise UserError("data.root is empty: set it to a crystal CSV folder or a prepared .npz")
    path = Path(root).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path if (REPO_ROOT / path).exists() else path


def csv_files(root: Path) -> list[Path]:
    """The CSV files of a folder, plain or gzipped, sorted by name; a file present in both
    forms is refused (its rows would be read twice)."""
    files = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(CSV_SUFFIXES))
    stems = [p.name.removesuffix(".gz") for p in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise UserError(
            f"{root} holds both {twice[0]} and {twice[0]}.gz: keep one of them"
        )
    return files


def split_files(root: Path) -> dict[str, Path] | None:
    """{split: file} when the folder has the CDVAE split files, else None (pooled layout)."""
    by_stem = {p.name.removesuffix(".gz").removesuffix(".csv"): p for p in csv_files(root)}
    if "train" not in by_stem:
        return None
    missing = [s for s in SPLITS if s not in by_stem]
    if missing:
        raise UserError(f"{root} has train.csv but lacks {', '.join(m + '.csv' for m in missing)}")
    return {s: by_stem[s] for s in SPLITS}


def display_path(path: Path) -> str:
    """A path inside the repository relative to its root, so that the prepared file and its
    provenance do not depend on where the clone sits; other paths absolute."""
    path = path.resolve()
    try:
        return str(path.relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return str(path)


# -- parsing --------------------------------------------------------------------------------
def structure_from_cif(cif: str):
    """CIF text -> Niggli-reduced pymatgen Structure in the canonical lattice orientation."""
    from pymatgen.core import Lattice, Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about rounding on most CIFs
        structure = Structure.from_str(cif, fmt="cif")
    if not structure.is_ordered:
        raise ValueError("has partially occupied (disordered) sites")
    reduced = structure.get_reduced_structure()  # Niggli
    lattice = Lattice.from_parameters(*reduced.lattice.parameters)
    return Structure(lattice, reduced.species, reduced.frac_coords, coords_are_cartesian=False)


def structure_arrays(structure, max_atoms: int):
    """Structure -> (types (max_atoms,), frac (max_atoms, 3), lengths (3,), angles (3,))."""
    n = len(structure)
    if n > max_atoms:
        raise ValueError(f"has {n} atoms, more than data.max_atoms = {max_atoms}")
    types = np.zeros(max_atoms, dtype=np.int16)
    frac = np.zeros((max_atoms, 3), dtype=np.float32)
    types[:n] = structure.atomic_numbers
    frac[:n] = np.mod(structure.frac_coords, 1.0)
    lengths = np.array(structure.lattice.abc, dtype=np.float32)
    angles = np.array(structure.lattice.angles, dtype=np.float32)
    return types, frac, lengths, angles


def read_cif_csv(
    path: str | Path, *, max_atoms: int, on_corrupt: str = "error", limit: int | None = None
) -> CrystalArrays:
    """Parse one CDVAE-format CSV (plain or ``.gz``); ``limit`` reads only its first rows."""
    import pandas as pd
    from tqdm import tqdm

    path = Path(path)
    try:
        df = pd.read_csv(path, nrows=limit)
    except Exception as exc:
        raise UserError(f"cannot read crystal CSV {path}: {exc}") from None
    if "cif" not in df.columns:
        raise UserError(f"{path} has no 'cif' column (CDVAE format); columns: {list(df.columns)}")
    ids_col = df["material_id"] if "material_id" in df.columns else pd.Series([""] * len(df))
    rows, ids, skipped = [], [], []
    for i, (cif, mid) in enumerate(
        tqdm(zip(df["cif"], ids_col), total=len(df), desc=f"parse {path.name}", unit="cif",
             mininterval=2.0, leave=False)
    ):
        where = f"{path}: row {i} (material_id {mid})"
        try:
            if not isinstance(cif, str) or not cif.strip():
                raise ValueError("empty cif field")
            rows.append(structure_arrays(structure_from_cif(cif), max_atoms))
        except Exception as exc:  # pymatgen raises many exception types on bad CIF text
            reason = f"{where}: {str(exc).strip() or type(exc).__name__}"
            if on_corrupt == "error":
                raise UserError(
                    f"cannot use crystal {reason} (set data.on_corrupt: skip to skip such rows)"
                ) from None
            skipped.append(reason)
            continue
        ids.append(f"{path.name}:{i}:{mid}")
    if not rows:
        raise UserError(f"{path}: no usable structures ({len(skipped)} skipped)")
    types, frac, lengths, angles = (np.stack(a) for a in zip(*rows))
    return CrystalArrays(types, frac, lengths, angles, np.array(ids), skipped)


def concat(parts: list[CrystalArrays]) -> CrystalArrays:
    arrays = [np.concatenate([getattr(p, f) for p in parts]) for f in (*FIELDS, "ids")]
    return CrystalArrays(*arrays, [s for p in parts for s in p.skipped])


@functools.lru_cache(maxsize=4)
def _read_folder(folder: str, stamp: tuple, max_atoms: int, on_corrupt: str, seed: int):
    """Split arrays of a CSV folder; cached per process (train and val share one parse)."""
    root = Path(folder)
    read = functools.partial(read_cif_csv, max_atoms=max_atoms, on_corrupt=on_corrupt)
    splits = split_files(root)
    if splits is not None:
        return {s: read(f) for s, f in splits.items()}
    files = csv_files(root)
    if not files:
        raise UserError(f"no CSV files in crystal data folder {root}")
    pooled = concat([read(f) for f in files])
    return pooled_splits(pooled, seed)


def pooled_splits(pooled: CrystalArrays, seed: int) -> dict[str, CrystalArrays]:
    m = len(pooled)
    perm = np.random.default_rng(seed).permutation(m)
    n_train, n_val = (round(m * f) for f in POOLED_FRACTIONS)
    return {
        "train": pooled.take(perm[:n_train]),
        "val": pooled.take(perm[n_train : n_train + n_val]),
        "test": pooled.take(perm[n_train + n_val :]),
    }


def load_splits(cfg: Config) -> tuple[dict[str, CrystalArrays], dict]:
    """-> ({split: arrays}, provenance) from data.root (CSV folder or prepared .npz)."""
    root = resolve_root(cfg.data.root)
    if not root.exists():
        raise UserError(
            f"crystal data not found: {cfg.data.root} (resolved to {root}). Point data.root at a "
            "CDVAE-format CSV folder (e.g. MP20 with train/val/test.csv) or a prepared .npz"
        )
    if root.is_file():
        return load_prepared(root, cfg.data.max_atoms)
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in csv_files(root))
    splits = _read_folder(str(root.resolve()), stamp, cfg.data.max_atoms, cfg.data.on_corrupt, cfg.data.seed)
    skipped = list(dict.fromkeys(r for a in splits.values() for r in a.skipped))
    if skipped:
        warnings.warn(f"{len(skipped)} crystal rows skipped (data.on_corrupt: skip), e.g. {skipped[0]}", stacklevel=2)
    layout = "cdvae-splits" if split_files(root) is not None else f"pooled-{POOLED_FRACTIONS}"
    return splits, {"source": display_path(root), "layout": layout, "skipped": skipped}


# -- prepared array file --------------------------------------------------------------------------
def prepare(cfg: Config, out_path: str | Path) -> dict:
    """Parse the CSV folder named by data.root once into a versioned ``.npz``."""
    root = resolve_root(cfg.data.root)
    if root.is_file():
        raise UserError(f"data.root {root} is already a file; prepare reads a CSV folder")
    splits, prov = load_splits(cfg)
    meta = {
        "dataset": "crystals",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": prov["source"],
        "layout": prov["layout"],
        "split_seed": cfg.data.seed,
        "max_atoms": cfg.data.max_atoms,
        "counts": {s: len(a) for s, a in splits.items()},
        "skipped": len(prov["skipped"]),
        "skipped_examples": prov["skipped"][:20],
        "units": "frac_coords in [0,1), lengths Angstrom, angles degrees; Niggli-reduced",
    }
    arrays = {f"{s}_{f}": getattr(a, f) for s, a in splits.items() for f in (*FIELDS, "ids")}
    with atomic_write(out_path) as fh:  # a file object: np.savez would append .npz to a path
        np.savez_compressed(fh, meta=np.str_(json.dumps(meta)), **arrays)
    return meta


def load_prepared(path: Path, max_atoms: int) -> tuple[dict[str, CrystalArrays], dict]:
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data["meta"]))
    except Exception as exc:
        raise UserError(f"{path} is not a readable crystal array file: {exc}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} has format {meta.get('format')!r} v{meta.get('format_version')}, expected "
            f"{FORMAT!r} v{FORMAT_VERSION}; re-run `python -m unite prepare`"
        )
    if meta["max_atoms"] != max_atoms:
        raise UserError(f"{path} was prepared with max_atoms {meta['max_atoms']}, config says {max_atoms}")
    splits = {
        s: CrystalArrays(*(data[f"{s}_{f}"] for f in (*FIELDS, "ids"))) for s in SPLITS
    }
    return splits, {"source": str(path), "layout": meta["layout"], "skipped": []}


class CrystalDataset(Dataset):
    """Items ``({"atom_types", "frac_coords", "lengths", "angles"}, 0)``."""

    def __init__(self, cfg: Config, split: str):
        splits, self.provenance = load_splits(cfg)
        arrays = splits[split]
        if split == "train" and cfg.data.subset > 0:
            arrays = arrays.take(np.arange(min(cfg.data.subset, len(arrays))))
        if len(arrays) == 0:
            raise UserError(f"crystal split '{split}' of {cfg.data.root} is empty")
        self.ids = arrays.ids
        self.tensors = {
            "atom_types": torch.from_numpy(arrays.atom_types.astype(np.int64)),
            "frac_coords": torch.from_numpy(arrays.frac_coords.astype(np.float32)),
            "lengths": torch.from_numpy(arrays.lengths.astype(np.float32)),
            "angles": torch.from_numpy(arrays.angles.astype(np.float32)),
        }

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return {k: v[i] for k, v in self.tensors.items()}, 0
