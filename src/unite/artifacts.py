"""The files that stages hand each other, in one place: their names of keys, how they are
written and how they are read.

Two kinds of file cross stage boundaries:

* **Array files** (``.npz``): sample files (``sample``, ``gather``, ``decode``), reconstruction
  files (``reconstruct``) and reference statistics (``evaluate ref-stats``). Arrays plus one
  ``meta`` entry, a JSON string. :func:`write_sample_file` / :func:`read_sample_file` are the
  strict pair (``meta`` required); :func:`read_npz` is the evaluators' reader, which accepts
  foreign files (ADM's reference batches, hand-made arrays) and says what is wrong with broken
  ones. :func:`checkpoint_meta` is what every array file says about the model that made it.
* **Records** (``.json``): one object ``{experiment, kind, metrics, scale, flags[, provenance]}``
  per metric file (:data:`RESULT_KINDS`, read by the tables and claims) and per analysis
  (:data:`ANALYSIS_KINDS`). :func:`result` builds one, :func:`write_result` writes it,
  :func:`read_record` reads it back.

The module stays import-light (numpy and torch load inside the functions that need them), so
that the tables and the workflow can use it cheaply.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from unite.atomic import atomic_write
from unite.errors import UserError

META = "meta"  # the JSON entry of every array file

RESULT_KINDS = (
    "gen_images",
    "recon_images",
    "gen_molecules",
    "recon_molecules",
    "gen_crystals",
    "recon_crystals",
    "cfg_sweep",
    "protocol",  # written by the former `evaluate protocol`; old files are still read
)
ANALYSIS_KINDS = ("alignment", "entropy", "trajectory", "curves")

# the model and sampling fields of an array file's meta that an atom metric's scale repeats
META_SCALE_KEYS = ("dataset", "model_size", "decoder_size", "train_steps", "fine_tuned", "solver",
              "steps", "nfe", "cfg", "interval", "seed", "use_ema", "split", "weight_sharing",
              "finetune")  # "finetune": "not applicable" (the paper fine-tunes images only)


# ----------------------------------------------------------------------------- array files


def write_sample_file(path: str | Path, arrays: dict, meta: dict) -> Path:
    """Atomic .npz write: arrays + ``meta`` as a JSON string (np.str_)."""
    import numpy as np

    path = Path(path)
    with atomic_write(path, "wb") as fh:
        np.savez(fh, meta=np.str_(json.dumps(meta, sort_keys=True)), **arrays)
    return path


def read_sample_file(path: str | Path) -> tuple[dict, dict]:
    """-> (arrays without meta, meta dict); unreadable files are a :class:`UserError`."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise UserError(f"sample file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k != META}
            meta = json.loads(str(f[META])) if META in f.files else None
    except Exception as exc:  # BadZipFile, EOFError, zlib.error on truncated files, ...
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UserError(f"cannot read sample file {path} ({reason}): truncated or not an .npz") from None
    if meta is None:
        raise UserError(f"{path} has no 'meta' entry: not written by unite sample/reconstruct")
    return arrays, meta


def read_npz(path: str | Path, what: str = "file") -> tuple[dict, dict]:
    """Every array of an ``.npz`` (read now, so a truncated member fails here) and its ``meta``
    JSON ({} when absent). Missing, empty, truncated or foreign files are a UserError."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty (0 bytes): an interrupted write? recreate it")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single array, not an .npz archive")
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, ValueError, OSError ...
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UserError(f"cannot read {what} {path} ({reason}): truncated or not an .npz file") from None
    meta = {}
    if META in arrays:
        raw = arrays.pop(META)
        try:
            meta = json.loads(str(raw.item() if hasattr(raw, "item") else raw))
        except (json.JSONDecodeError, ValueError):
            meta = {}
    return arrays, meta if isinstance(meta, dict) else {}


def npz_members(path: str | Path) -> list[str]:
    """The member names of an ``.npz`` ([] when it cannot be opened: :func:`read_npz` then
    says what is wrong with it)."""
    import numpy as np

    try:
        with np.load(path) as f:
            return list(f.files)
    except Exception:
        return []


def checkpoint_meta(cfg, ckpt_meta: dict, ckpt_path, use_ema: bool) -> dict:
    """What a reader of any output file needs to know about the model that made it, including
    its provenance (checkpoint sha256, config hash, git commit: :mod:`unite.provenance`)."""
    from unite import provenance
    from unite.config import to_dict
    from unite.finetune import scale_fields as finetune_scale

    m = cfg.model
    # the hash names the trained model: sampling settings are recorded field by field instead,
    # and where the data lives (data.root) differs between machines without changing the model
    model_cfg = {k: v for k, v in to_dict(cfg).items() if k != "sample"}
    model_cfg["data"] = {k: v for k, v in model_cfg["data"].items() if k != "root"}
    return {
        **provenance.model_provenance(model_cfg, ckpt_path, ckpt_meta, use_ema),
        "experiment": cfg.name,
        "dataset": cfg.data.kind,
        "model_size": m.size,
        "decoder_size": m.decoder_size,
        "weight_sharing": bool(m.weight_sharing),
        "stop_gradient": bool(cfg.train.stop_gradient),
        "train_steps": int(ckpt_meta.get("step", 0)),
        **finetune_scale(cfg, ckpt_meta),  # fine_tuned (+ its steps/epochs/loss)
        "ckpt": str(ckpt_path),
    }


def scale_from_meta(meta: dict) -> dict:
    """The :data:`META_SCALE_KEYS` fields an array file's meta holds."""
    return {k: meta[k] for k in META_SCALE_KEYS if k in meta}


# ----------------------------------------------------------------------------- records


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
    """A record: experiment, kind, metrics, scale, flags, and (metric files) the
    ``provenance`` block of :mod:`unite.provenance` (what the numbers were computed from)."""
    if kind not in RESULT_KINDS + ANALYSIS_KINDS:
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
    """Write a record as pretty JSON, atomically (parent folders created). Build it with
    :func:`result` (NaN/inf become null there); a NaN left in ``obj`` fails before any write."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    with atomic_write(path, "w") as fh:
        fh.write(text)


def read_record(path: str | Path) -> dict | None:
    """A record as written by :func:`write_result`; None when the file is missing, not JSON, or
    not a record (no ``kind`` and ``metrics``)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not {"kind", "metrics"} <= record.keys():
        return None
    return record
