"""Evaluation metrics: images (torch-fidelity FID/IS, rFID, PSNR/L1/LPIPS), the paper's sampling
protocol (CFG sweep, Table 4), and the molecule/crystal evaluators (their own modules).

Every evaluator writes one JSON object in the team's result format (see :func:`write_result`),
so that the tables command reads all of them the same way. This package stays import-light:
torch and torch-fidelity load only inside the functions that need them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from unite.atomic import atomic_write

RESULT_KINDS = (
    "gen_images",
    "recon_images",
    "gen_molecules",
    "recon_molecules",
    "gen_crystals",
    "recon_crystals",
    "cfg_sweep",
    "protocol",
)


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and non-finite floats -> plain JSON (NaN/inf become null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result(
    *, experiment: str, kind: str, metrics: dict, scale: dict, flags: list[str],
    provenance: dict | None = None,
) -> dict:
    """The team's metric-file object: experiment, kind, metrics, scale, flags, and the
    ``provenance`` block of :mod:`unite.provenance` (what the numbers were computed from)."""
    if kind not in RESULT_KINDS:
        raise ValueError(f"unknown result kind {kind!r}")
    obj = {
        "experiment": experiment,
        "kind": kind,
        "metrics": metrics,
        "scale": scale,
        "flags": list(flags),
    }
    if provenance is not None:
        obj["provenance"] = provenance
    return _jsonable(obj)


def write_result(path: str | Path, obj: dict) -> None:
    """Write a result object as pretty JSON, atomically (parent folders created)."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"  # a NaN fails before any write
    with atomic_write(path, "w") as fh:
        fh.write(text)


def read_npz_meta(npz) -> dict:
    """The ``meta`` JSON string of a sample/recon file as a dict ({} when absent)."""
    if "meta" not in npz.files:
        return {}
    raw = npz["meta"]
    text = raw.item() if hasattr(raw, "item") else str(raw)
    try:
        meta = json.loads(str(text))
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}
