"""``python -m unite compare A B``: every difference between two results folders.

Made for the reproducibility check "two runs at the same commit give the same tables": it
walks both folders and compares, file by file, what a run produces:

* tables (``tables/*.csv`` cell by cell, ``*.md`` / ``*.tex`` line by line),
* metric, analysis and other JSON files leaf by leaf (numbers with ``--rtol`` / ``--atol``),
* JSON-lines logs such as ``train_metrics.jsonl`` record by record,
* ``.npz`` arrays (samples, reconstructions, prepared data, reference statistics) and
  ``.pt`` checkpoints tensor by tensor (maximum absolute difference),
* images by decoded pixels, anything else byte for byte.

Wall-clock fields (``TIMING_KEYS``, e.g. training throughput) and the folders that only
hold logs and timings (``SKIPPED_DIRS``) are left out: they differ on every run by nature.
``runs/`` is skipped too: its checkpoints are the same files as ``checkpoints/``.
Exit status 0 when nothing differs, 1 otherwise (like ``diff``).

    python -m unite compare run1/results run2/results
    python -m unite compare docs/results results/tables --include '*.csv'   # vs the snapshot
"""

from __future__ import annotations

import argparse
import csv
import difflib
import fnmatch
import io
import json
import math
from pathlib import Path

import numpy as np

from unite.errors import UserError

SKIPPED_DIRS = ("logs", "benchmarks", "runs", ".snakemake")
TIMING_KEYS = frozenset({"samples_per_s", "seconds", "wall_s", "elapsed_s"})
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class Differences:
    """Collects one line per difference, per file."""

    def __init__(self, rtol: float = 0.0, atol: float = 0.0, limit: int = 20):
        self.rtol, self.atol, self.limit = rtol, atol, limit
        self.lines: list[str] = []
        self.files_differing: list[str] = []

    def close(self, a, b) -> bool:
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            if math.isnan(a) and math.isnan(b):
                return True
            return a == b or abs(a - b) <= self.atol + self.rtol * abs(b)
        return a == b

    def report(self, name: str, found: list[str]) -> None:
        if not found:
            return
        self.files_differing.append(name)
        shown = found[: self.limit]
        self.lines += [f"{name}: {line}" for line in shown]
        if len(found) > len(shown):
            self.lines.append(f"{name}: ... {len(found) - len(shown)} more differences")


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _flatten(obj, prefix: str = "") -> dict:
    """Nested JSON -> {"a.b[2].c": leaf}; wall-clock keys are dropped."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in TIMING_KEYS:
                continue
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def _relative(a, b) -> str:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b != 0:
        return f" (relative {abs(a - b) / abs(b):.2g})"
    return ""


def compare_json_values(a, b, diffs: Differences) -> list[str]:
    fa, fb = _flatten(a), _flatten(b)
    found = []
    for key in sorted(fa.keys() | fb.keys()):
        if key not in fa or key not in fb:
            found.append(f"{key or '<value>'}: only in {'B' if key in fb else 'A'}")
        elif not diffs.close(fa[key], fb[key]):
            found.append(f"{key or '<value>'}: {fa[key]!r} != {fb[key]!r}"
                         f"{_relative(fa[key], fb[key])}")
    return found


def compare_json(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    return compare_json_values(json.loads(pa.read_text()), json.loads(pb.read_text()), diffs)


def compare_jsonl(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    la = [json.loads(x) for x in pa.read_text().splitlines() if x.strip()]
    lb = [json.loads(x) for x in pb.read_text().splitlines() if x.strip()]
    found = [] if len(la) == len(lb) else [f"{len(la)} records != {len(lb)} records"]
    for i, (ra, rb) in enumerate(zip(la, lb)):
        found += [f"record {i}: {d}" for d in compare_json_values(ra, rb, diffs)]
    return found


def compare_csv(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    ra = list(csv.reader(io.StringIO(pa.read_text())))
    rb = list(csv.reader(io.StringIO(pb.read_text())))
    if not ra or not rb or ra[0] != rb[0]:
        return [f"header {ra[:1]} != {rb[:1]}"]
    header, found = ra[0], []
    if len(ra) != len(rb):
        found.append(f"{len(ra) - 1} rows != {len(rb) - 1} rows")
    for row_a, row_b in zip(ra[1:], rb[1:]):
        label = row_a[0] if row_a else "?"
        for col, va, vb in zip(header, row_a, row_b):
            if not diffs.close(_number(va), _number(vb)):
                found.append(f"row {label!r}, column {col!r}: {va!r} != {vb!r}")
    return found


def compare_text(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    a, b = pa.read_text().splitlines(), pb.read_text().splitlines()
    return [line for line in difflib.unified_diff(a, b, "A", "B", n=0, lineterm="")
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _array_diff(name: str, a: np.ndarray, b: np.ndarray, diffs: Differences) -> str | None:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{name}: {a.dtype}{list(a.shape)} != {b.dtype}{list(b.shape)}"
    if a.dtype.kind in "fc":
        if np.array_equal(a, b, equal_nan=True):
            return None
        gap = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        if np.allclose(a, b, rtol=diffs.rtol, atol=diffs.atol, equal_nan=True):
            return None
        changed = int((a != b).sum())
        return f"{name}: max |difference| {gap:.3g} ({changed} of {a.size} values differ)"
    if np.array_equal(a, b):
        return None
    return f"{name}: {int((a != b).sum())} of {a.size} values differ"


def compare_npz(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    with np.load(pa, allow_pickle=False) as fa, np.load(pb, allow_pickle=False) as fb:
        found = [f"array {k}: only in {'B' if k in fb.files else 'A'}"
                 for k in sorted(set(fa.files) ^ set(fb.files))]
        for key in sorted(set(fa.files) & set(fb.files)):
            a, b = fa[key], fb[key]
            if key == "meta" and a.dtype.kind == "U":  # JSON provenance string
                found += [f"meta.{d}" for d in compare_json_values(
                    json.loads(str(a)), json.loads(str(b)), diffs)]
                continue
            line = _array_diff(f"array {key}", a, b, diffs)
            if line:
                found.append(line)
    return found


def _tensors(obj, prefix: str = "") -> dict:
    """Tensors and plain leaves of a checkpoint dict, by dotted path."""
    import torch

    if isinstance(obj, torch.Tensor):
        return {prefix: obj.detach().cpu().numpy() if obj.dtype != torch.bfloat16
                else obj.float().cpu().numpy()}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}[{i}]"))
        return out
    if isinstance(obj, np.ndarray):
        return {prefix: obj}
    return {prefix: obj}


def _load_pt(path: Path):
    """Any torch file of a run (UNITE checkpoints, the digits classifier): tensors only when
    that suffices, else the full pickle (these are the user's own results)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return torch.load(path, map_location="cpu", weights_only=False)


def compare_checkpoint(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    ta, tb = _tensors(_load_pt(pa)), _tensors(_load_pt(pb))
    found = [f"{k}: only in {'B' if k in tb else 'A'}" for k in sorted(ta.keys() ^ tb.keys())]
    for key in sorted(ta.keys() & tb.keys()):
        a, b = ta[key], tb[key]
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            line = _array_diff(key, a, b, diffs)
            if line:
                found.append(line)
        elif not diffs.close(a, b):
            found.append(f"{key}: {a!r} != {b!r}")
    return found


def compare_image(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    from PIL import Image

    with Image.open(pa) as ia, Image.open(pb) as ib:
        a, b = np.asarray(ia.convert("RGBA")), np.asarray(ib.convert("RGBA"))
    line = _array_diff("pixels", a, b, diffs)
    return [line] if line else []


def compare_bytes(pa: Path, pb: Path, diffs: Differences) -> list[str]:
    return [] if pa.read_bytes() == pb.read_bytes() else ["contents differ (bytes)"]


def comparer(path: Path):
    name = path.name
    if name.endswith(".csv"):
        return compare_csv
    if name.endswith((".md", ".tex", ".txt", ".tsv", ".yaml")):
        return compare_text
    if name.endswith(".json"):
        return compare_json
    if name.endswith(".jsonl"):
        return compare_jsonl
    if name.endswith(".npz"):
        return compare_npz
    if name.endswith(".pt"):
        return compare_checkpoint
    if name.lower().endswith(IMAGE_SUFFIXES):
        return compare_image
    return compare_bytes


def result_files(root: Path, include: list[str] | None = None) -> set[str]:
    files = set()
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in SKIPPED_DIRS and not p.name.startswith("."):
            if not include or any(fnmatch.fnmatch(rel.as_posix(), g) for g in include):
                files.add(rel.as_posix())
    return files


def compare_folders(a: str | Path, b: str | Path, rtol: float = 0.0, atol: float = 0.0,
                    limit: int = 20, include: list[str] | None = None) -> tuple[Differences, int]:
    """-> (differences, number of files compared); ``include`` = globs of relative paths."""
    a, b = Path(a), Path(b)
    for p in (a, b):
        if not p.is_dir():
            raise UserError(f"not a results folder: {p}")
    diffs = Differences(rtol, atol, limit)
    fa, fb = result_files(a, include), result_files(b, include)
    for name in sorted(fa - fb):
        diffs.report(name, ["only in A"])
    for name in sorted(fb - fa):
        diffs.report(name, ["only in B"])
    common = sorted(fa & fb)
    for name in common:
        try:
            found = comparer(a / name)(a / name, b / name, diffs)
        except Exception as exc:  # an unreadable file is a difference worth naming, not a crash
            found = [f"cannot compare: {type(exc).__name__}: {exc}"]
        diffs.report(name, found)
    return diffs, len(common)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="first results folder (e.g. results of run 1)")
    parser.add_argument("b", help="second results folder")
    parser.add_argument("--rtol", type=float, default=0.0,
                        help="relative tolerance for numbers (default 0: exact)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    parser.add_argument("--limit", type=int, default=20,
                        help="differences printed per file (the count is always given)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="compare only files whose path relative to the folder matches "
                        "(repeatable), e.g. --include 'tables/*' --include 'metrics/*'")


def run(args: argparse.Namespace) -> None:
    diffs, n = compare_folders(args.a, args.b, args.rtol, args.atol, args.limit, args.include)
    for line in diffs.lines:
        print(line)
    skipped = ", ".join(f"{d}/" for d in SKIPPED_DIRS)
    print(f"{n} files in both; {len(diffs.files_differing)} differ "
          f"(not compared: {skipped} and the timing keys {', '.join(sorted(TIMING_KEYS))})")
    if diffs.files_differing:
        raise SystemExit(1)
