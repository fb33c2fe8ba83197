"""Provenance: what a number was computed from, recorded next to it.

Reproductions fail on evaluation details (reference statistics, feature network, solver,
NFE, guidance, label sampling, EMA, which checkpoint), so every metric file carries a
``provenance`` block that names each of them, with sha256 digests of the files involved, the
hash of the model's resolved config and the git commit of the code. The tables print a short
form per row and list the full blocks (``tables/provenance.*``).

Sample and reconstruction files record the model side when they are written
(:func:`model_provenance`, via ``unite.artifacts.checkpoint_meta``); the evaluators add the
measuring side (feature network, reference, protocol) and call :func:`build`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path

UNKNOWN = "unknown"
COMMIT_ENV = "UNITE_GIT_COMMIT"  # set where the code runs outside a git checkout

# Fields every metric file must fill, by what was measured. A field that does not apply to a
# kind is absent from its list (a reconstruction has no solver; molecules have no feature
# network); None in a listed field means "not recorded", and the evaluators flag it.
MODEL_FIELDS = ("checkpoint", "checkpoint_sha256", "train_step", "ema", "fine_tuned",
                "config_hash", "git_commit")
SAMPLING_FIELDS = ("samples", "samples_sha256", "num_samples", "seed", "solver", "steps", "nfe",
                   "cfg_scale", "guidance_interval", "label_sampling", "sample_git_commit")
RECON_FIELDS = ("samples", "samples_sha256", "num_samples", "seed", "split", "sample_git_commit")
IMAGE_FIELDS = ("protocol", "feature_network", "feature_layer", "feature_weights",
                "feature_weights_sha256", "reference", "reference_sha256", "reference_format",
                "reference_dataset", "reference_split", "reference_count", "reference_preprocess")
ATOM_FIELDS = ("protocol", "toolchain")
REQUIRED: dict[str, tuple[str, ...]] = {
    "gen_images": MODEL_FIELDS + SAMPLING_FIELDS + IMAGE_FIELDS,
    "recon_images": MODEL_FIELDS + RECON_FIELDS
    + ("protocol", "feature_network", "feature_layer", "feature_weights", "feature_weights_sha256"),
    "gen_molecules": MODEL_FIELDS + SAMPLING_FIELDS + ATOM_FIELDS + ("validity_protocol",),
    "recon_molecules": MODEL_FIELDS + RECON_FIELDS + ATOM_FIELDS,
    "gen_crystals": MODEL_FIELDS + SAMPLING_FIELDS + ATOM_FIELDS,
    "recon_crystals": MODEL_FIELDS + RECON_FIELDS + ATOM_FIELDS,
    "cfg_sweep": MODEL_FIELDS + ("seed", "solver", "steps", "guidance_interval", "label_sampling")
    + IMAGE_FIELDS,
    "protocol": MODEL_FIELDS + ("seed", "guidance_interval") + IMAGE_FIELDS,
}


# -- digests --------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, hashed once per process while its size and mtime stay the same."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def sha256_or_none(path: str | Path | None) -> str | None:
    return file_sha256(path) if path and Path(path).is_file() else None


def config_hash(cfg_dict: dict) -> str:
    """sha256 of a resolved config (canonical JSON: sorted keys, no whitespace)."""
    text = json.dumps(cfg_dict, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- code version ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"git_commit", "git_dirty"}`` of the checkout this package is imported from.

    ``git_dirty`` is true when tracked files differ from the commit (the number may then come
    from code no commit holds). Outside a checkout: $UNITE_GIT_COMMIT, else "unknown"."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=20, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=60, check=True).stdout
        return {"git_commit": commit, "git_dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": os.environ.get(COMMIT_ENV) or UNKNOWN, "git_dirty": None}


def toolchain(*packages: str) -> dict:
    """Installed versions of the libraries an evaluator's numbers depend on."""
    from importlib import metadata

    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# -- assembling -----------------------------------------------------------------------------
def model_provenance(cfg_dict: dict, ckpt_path, ckpt_meta: dict, use_ema: bool) -> dict:
    """What an output file needs to name its model: checkpoint digest and step, EMA,
    fine-tuned (passed through from the checkpoint's meta), config hash, sampling code."""
    version = code_version()
    return {
        "ckpt_sha256": sha256_or_none(ckpt_path),
        "config_hash": config_hash(cfg_dict),
        "train_step": int(ckpt_meta.get("step", 0)),
        "fine_tuned": bool(ckpt_meta.get("fine_tuned", False)),
        "use_ema": bool(use_ema),
        "git_commit": version["git_commit"],
        "git_dirty": version["git_dirty"],
    }


def from_file_meta(meta: dict, path=None) -> dict:
    """The model and sampling fields of a sample/reconstruction file's meta, renamed to the
    provenance vocabulary; ``git_commit`` there is the code that *wrote* the file."""
    recon = meta.get("kind") == "reconstructions"
    out = {
        "checkpoint": meta.get("ckpt"),
        "checkpoint_sha256": meta.get("ckpt_sha256"),
        "train_step": meta.get("train_step", meta.get("train_steps")),
        "ema": meta.get("use_ema"),
        "fine_tuned": meta.get("fine_tuned"),
        "config_hash": meta.get("config_hash"),
        "sample_git_commit": meta.get("git_commit"),
        "samples": str(path) if path is not None else None,
        "samples_sha256": sha256_or_none(path),
        "num_samples": meta.get("num_samples"),
        "seed": meta.get("seed"),
    }
    if recon:
        out |= {"split": meta.get("split"), "limit": meta.get("limit")}
    else:
        out |= {
            "solver": meta.get("solver"),
            "steps": meta.get("steps") if meta.get("solver") != "dopri5" else "adaptive",
            "nfe": meta.get("nfe"),
            "atol": meta.get("atol"),
            "rtol": meta.get("rtol"),
            "cfg_scale": meta.get("cfg"),
            "guidance_interval": meta.get("interval"),
            "label_sampling": meta.get("label_mode"),
            "per_class": meta.get("per_class"),
            "time_shift": meta.get("time_shift"),
            "num_shards": meta.get("num_shards"),
        }
    return out


def build(kind: str, **fields) -> dict:
    """The ``provenance`` block of one metric file: the given fields plus the evaluating code's
    commit; ``missing`` lists the required fields of ``kind`` that are None."""
    version = code_version()
    prov = {**fields, "git_commit": version["git_commit"], "git_dirty": version["git_dirty"]}
    prov["missing"] = missing(kind, prov)
    return prov


def missing(kind: str, prov: dict) -> list[str]:
    return [k for k in REQUIRED.get(kind, ()) if prov.get(k) in (None, "", UNKNOWN)]


def missing_flag(prov: dict) -> list[str]:
    """A result flag when provenance is incomplete (e.g. a sample file from older code)."""
    gaps = prov.get("missing") or []
    return [f"provenance incomplete: {', '.join(gaps)} not recorded"] if gaps else []
