"""QM9 (ADiT protocol): 130,831 molecules, explicit hydrogens, 3D coordinates in Angstrom.

Source: the CSV files shipped inside the PyPI package ``qm9pack`` (read directly: its
``__init__`` imports ``pkg_resources``, which recent setuptools no longer ships). Each
molecule becomes ``max_atoms`` = 29 slots (atomic numbers, 0 = empty; positions centred at the
centroid of its atoms, zeros in empty slots). A seeded shuffle gives the 100,000 / 18,000 /
rest split. ``prepare`` writes everything to one versioned ``.npz`` that ``QM9Dataset`` reads
through ``data.root``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from unite.atomic import atomic_write
from unite.config import Config
from unite.errors import UserError

FORMAT = "unite-qm9"
FORMAT_VERSION = 1
NUM_MOLECULES = 130_831
SPLIT_SIZES = (100_000, 18_000)  # train, val; test = the rest (12,831)
PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
MAX_ATOMS = 29


def qm9pack_folder() -> Path:
    """The ``data`` folder of the installed ``qm9pack`` package (without importing it)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("QM9 needs the PyPI package 'qm9pack' (pip install 'unite-repro[chem]')")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    missing = [p for p in PARTS if not (folder / p).is_file()]
    if missing:
        raise UserError(f"qm9pack is installed but {folder} lacks {', '.join(missing)}")
    return folder


def _parse_elements(text: str) -> list[str]:
    # fast path for "['C','H',...]"; the general Python-literal parser is the fallback
    items = [s.strip().strip("'\"") for s in text.strip().strip("[]").split(",")]
    if all(s in ELEMENTS for s in items):
        return items
    return list(ast.literal_eval(text))


def _parse_xyz(text: str) -> np.ndarray:
    try:  # "[[x,y,z],[...]]" with Python float literals such as "0." (not valid JSON)
        flat = np.array(text.replace("[", "").replace("]", "").split(","), dtype=np.float64)
        return flat.reshape(-1, 3)
    except ValueError:
        return np.asarray(ast.literal_eval(text), dtype=np.float64).reshape(-1, 3)


def read_qm9pack(folder: Path | None = None, limit: int | None = None):
    """-> (atom_types (M, 29) int8, positions (M, 29, 3) float32, qm9 index (M,) int64).

    ``limit`` reads only the first rows (tests)."""
    import pandas as pd

    folder = folder or qm9pack_folder()
    frames = []
    for name in PARTS:
        rows = None if limit is None else max(limit - sum(len(f) for f in frames), 0)
        if rows == 0:
            break
        frames.append(pd.read_csv(folder / name, usecols=["Index", "Elements", "XYZ_Ang"], nrows=rows))
    df = pd.concat(frames, ignore_index=True)
    m = len(df)
    types = np.zeros((m, MAX_ATOMS), dtype=np.int8)
    pos = np.zeros((m, MAX_ATOMS, 3), dtype=np.float32)
    for i, (el_text, xyz_text) in enumerate(zip(df["Elements"], df["XYZ_Ang"])):
        try:
            elements = _parse_elements(el_text)
            xyz = _parse_xyz(xyz_text)
            if len(elements) != len(xyz) or not 0 < len(elements) <= MAX_ATOMS:
                raise ValueError(f"{len(elements)} elements but {len(xyz)} positions")
            z = np.array([ELEMENTS[e] for e in elements])
        except (ValueError, KeyError, SyntaxError) as exc:
            raise UserError(f"qm9pack row {i} (QM9 index {df['Index'][i]}): {exc}") from None
        n = len(z)
        types[i, :n] = z
        pos[i, :n] = xyz - xyz.mean(0)
    return types, pos, df["Index"].to_numpy(np.int64)


def split_indices(m: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded shuffle -> 100,000 / 18,000 / rest (scaled proportionally for a partial read)."""
    perm = np.random.default_rng(seed).permutation(m)
    n_train = round(m * SPLIT_SIZES[0] / NUM_MOLECULES)
    n_val = round(m * SPLIT_SIZES[1] / NUM_MOLECULES)
    return {
        "train": perm[:n_train],
        "val": perm[n_train : n_train + n_val],
        "test": perm[n_train + n_val :],
    }


def write_prepared(path: str | Path, types, pos, qm9_index, seed: int, source: str) -> dict:
    splits = split_indices(len(types), seed)
    meta = {
        "dataset": "qm9",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": source,
        "num_molecules": int(len(types)),
        "max_atoms": MAX_ATOMS,
        "split_seed": seed,
        "counts": {k: int(len(v)) for k, v in splits.items()},
        "units": "Angstrom, centred at the centroid of the atoms",
    }
    with atomic_write(path) as fh:  # a file object: np.savez would append .npz to a path
        np.savez_compressed(
            fh,
            meta=np.str_(json.dumps(meta)),
            atom_types=types,
            positions=pos,
            qm9_index=qm9_index,
            **{f"{k}_idx": v for k, v in splits.items()},
        )
    return meta


def prepare(cfg: Config, out_path: str | Path, limit: int | None = None) -> dict:
    """Read all of qm9pack, centre, pad to 29 slots, split, write the versioned array file."""
    if cfg.data.max_atoms < MAX_ATOMS:
        raise UserError(f"data.max_atoms must be >= {MAX_ATOMS} for QM9, got {cfg.data.max_atoms}")
    folder = qm9pack_folder()
    types, pos, index = read_qm9pack(folder, limit)
    # the package and its version, not the install path: the prepared file should not depend
    # on where the environment lives
    source = f"qm9pack {importlib.metadata.version('qm9pack')}: data/qm9_part*.csv"
    return write_prepared(out_path, types, pos, index, cfg.data.seed, source)


def load_prepared(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"QM9 array file not found: {path}. Create it with "
            f"`python -m unite prepare --config <qm9 config> --out {path}` (data.root names it)"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data["meta"]))
    except Exception as exc:
        raise UserError(f"{path} is not a readable QM9 array file: {exc}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} has format {meta.get('format')!r} v{meta.get('format_version')}, expected "
            f"{FORMAT!r} v{FORMAT_VERSION}; re-run `python -m unite prepare`"
        )
    data["meta"] = meta
    return data


def random_rotation(generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random 3x3 rotation (QR of a Gaussian matrix, sign-fixed, det +1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class QM9Dataset(Dataset):
    """Items ``({"atom_types": (29,) long, "positions": (29, 3) float}, 0)``."""

    def __init__(self, cfg: Config, split: str):
        if not cfg.data.root:
            raise UserError(
                "data.root is empty: set it to the QM9 array file written by "
                "`python -m unite prepare --config <qm9 config> --out PATH`"
            )
        if cfg.data.max_atoms != MAX_ATOMS:
            raise UserError(f"QM9 uses data.max_atoms = {MAX_ATOMS}, got {cfg.data.max_atoms}")
        data = load_prepared(cfg.data.root)
        idx = data[f"{split}_idx"]
        if split == "train" and cfg.data.subset > 0:
            idx = idx[: cfg.data.subset]
        self.meta = data["meta"]
        self.types = torch.from_numpy(data["atom_types"][idx].astype(np.int64))
        self.positions = torch.from_numpy(data["positions"][idx].astype(np.float32))
        self.rotate = split == "train" and cfg.data.random_rotation

    def __len__(self) -> int:
        return len(self.types)

    def __getitem__(self, i: int):
        pos = self.positions[i]
        if self.rotate:
            pos = pos @ random_rotation().T  # centroid stays at 0; empty slots stay 0
        return {"atom_types": self.types[i], "positions": pos}, 0
