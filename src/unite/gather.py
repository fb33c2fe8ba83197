"""``unite gather``: join the shard files of one sampling run into one sample file.

Refuses (UserError) anything that is not exactly one complete run: files whose meta differ in
anything but the per-shard fields, a shard given twice, a shard missing, or arrays that do not
line up. The merged file is what the unsharded run would have written: arrays concatenated in
shard order (= the run's label order), ``num_samples`` the total, NFE averaged over samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unite.artifacts import read_sample_file, write_sample_file
from unite.errors import UserError
from unite.sampling import per_sample

# fields that legitimately differ between shards of one run
PER_SHARD = ("shard", "shard_start", "shard_stop", "num_samples", "nfe", "network_passes",
             "git_commit", "git_dirty")
# code versions may differ between shards (a shard re-run after a commit): kept, listed if mixed
CODE_FIELDS = ("git_commit", "git_dirty")


def gather(paths: list[str | Path]) -> tuple[dict[str, np.ndarray], dict]:
    """Shard files -> (concatenated arrays, merged meta)."""
    if not paths:
        raise UserError("gather needs at least one --inputs file")
    shards = [(Path(p), *read_sample_file(p)) for p in paths]
    first_path, first_arrays, first_meta = shards[0]
    for key in ("shard", "num_shards"):
        for path, _, meta in shards:
            if key not in meta:
                raise UserError(f"{path} has no '{key}' in its meta: not a `unite sample` shard")
    common = {k: v for k, v in first_meta.items() if k not in PER_SHARD}
    for path, arrays, meta in shards[1:]:
        other = {k: v for k, v in meta.items() if k not in PER_SHARD}
        diff = sorted(k for k in set(common) | set(other) if common.get(k) != other.get(k))
        if diff:
            detail = ", ".join(f"{k}: {common.get(k)!r} vs {other.get(k)!r}" for k in diff[:4])
            raise UserError(f"{path} is not from the same run as {first_path} ({detail})")
        if set(arrays) != set(first_arrays):
            raise UserError(f"{path} holds arrays {sorted(arrays)}, {first_path} {sorted(first_arrays)}")

    num_shards = int(first_meta["num_shards"])
    by_shard: dict[int, tuple] = {}
    for path, arrays, meta in shards:
        k = int(meta["shard"])
        if k in by_shard:
            raise UserError(f"shard {k} given twice: {by_shard[k][0]} and {path}")
        by_shard[k] = (path, arrays, meta)
    missing = sorted(set(range(num_shards)) - set(by_shard))
    if missing:
        raise UserError(f"shards missing from a {num_shards}-shard run: {missing}")
    ordered = [by_shard[k] for k in range(num_shards)]

    expected_start = 0
    for path, arrays, meta in ordered:
        n = len(arrays["labels"]) if "labels" in arrays else len(next(iter(arrays.values())))
        start, stop = meta.get("shard_start", expected_start), meta.get("shard_stop", expected_start + n)
        if start != expected_start or stop - start != n or meta.get("num_samples", n) != n:
            raise UserError(f"{path}: shard {meta['shard']} covers [{start}, {stop}) with {n} "
                            f"samples, expected to start at {expected_start}")
        expected_start = stop
    total = first_meta.get("total_samples", expected_start)
    if expected_start != total:
        raise UserError(f"shards hold {expected_start} samples, the run has {total}")

    merged_arrays = {k: np.concatenate([a[k] for _, a, _ in ordered]) for k in first_arrays}
    counts = np.array([m["num_samples"] for _, _, m in ordered], dtype=np.float64)
    meta = dict(common)
    for key in ("nfe", "network_passes"):
        values = [m.get(key) for _, _, m in ordered]
        if all(v is not None for v in values):
            meta[key] = per_sample(float(np.dot(counts, values)), int(counts.sum()))
    for key in CODE_FIELDS:
        values = list(dict.fromkeys(m.get(key) for _, _, m in ordered))
        meta[key] = values[0] if len(values) == 1 else values
    meta.update(shard=None, shard_start=0, shard_stop=expected_start, num_samples=expected_start,
                gathered_from=[str(p) for p, _, _ in ordered])
    return merged_arrays, meta


def add_arguments(p) -> None:
    p.add_argument("--inputs", nargs="+", required=True, help="shard .npz files of one run")
    p.add_argument("--out", required=True, help="combined .npz")


def run(args) -> None:
    arrays, meta = gather(args.inputs)
    write_sample_file(args.out, arrays, meta)
    print(json.dumps({"out": str(args.out), "num_samples": meta["num_samples"],
                      "num_shards": meta.get("num_shards"), "nfe": meta.get("nfe")}))
