"""Which classifier-free-guidance scale w a sampling run uses, and how it was picked.

The paper's gFID is measured at the best w of a sweep (1.0 .. 4.0, step 0.2). The workflow runs
the sweep on fewer samples per scale (``evaluate cfg-sweep``), then draws the full 50K
class-balanced set at the sweep's best w: ``unite sample --cfg-from SWEEP.json`` reads that w
when the job runs (the value does not exist when Snakemake builds its DAG). The sample file's
meta records the w, its source and a one-line account of the choice, so every metric and table
computed from it can say how w was picked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from unite.errors import UserError

SWEEP = "sweep"
UNGUIDED_NOTE = "unguided (w = 1)"


@dataclass(frozen=True)
class Choice:
    """A guidance scale and where it came from."""

    w: float
    source: str  # "sweep" | "--cfg" | "sample.cfg"
    selection: str  # one line for tables: how w was picked

    def meta(self) -> dict:
        return {"cfg": self.w, "cfg_source": self.source, "cfg_selection": self.selection}


def read_sweep(path: str | Path) -> dict:
    """A ``cfg_sweep`` result file (``evaluate cfg-sweep``), checked."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--cfg-from {path}: no such file (run `evaluate cfg-sweep` first)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"--cfg-from {path}: not JSON ({exc})") from None
    metrics = obj.get("metrics") if isinstance(obj, dict) else None
    if obj.get("kind") != "cfg_sweep" or not isinstance(metrics, dict) or "best_cfg" not in metrics:
        raise UserError(f"--cfg-from {path}: not a cfg_sweep result (kind {obj.get('kind')!r})")
    return obj


def describe_sweep(sweep: dict) -> str:
    """'lowest fid of a sweep over w = 1-4 (16 scales), 10000 samples per scale, dopri5'."""
    m, scale = sweep["metrics"], sweep.get("scale") or {}
    scales = m.get("scales_evaluated") or [p.get("cfg") for p in m.get("points", [])]
    span = f"w = {min(scales):g}-{max(scales):g} ({len(scales)} scales)" if scales else "w"
    parts = [f"lowest {m.get('fid_key', 'fid')} of a sweep over {span}"]
    if scale.get("num_samples"):
        parts.append(f"{scale['num_samples']} samples per scale")
    if scale.get("solver"):
        steps = f" {scale['steps']} steps" if scale.get("steps") else ""
        parts.append(f"{scale['solver']}{steps}")
    if m.get("early_stopped"):
        parts.append("stopped early")
    return ", ".join(parts)


def from_sweep(path: str | Path) -> Choice:
    """The best w of a sweep result."""
    sweep = read_sweep(path)
    w = float(sweep["metrics"]["best_cfg"])
    return Choice(w, SWEEP, f"w = {w:g}: {describe_sweep(sweep)}")


def fixed(w: float, source: str) -> Choice:
    note = UNGUIDED_NOTE if w == 1.0 else f"w = {w:g} fixed ({source}), not swept"
    return Choice(float(w), source, note)


def choose(cfg_from: str | None, cli_w: float | None, config_w: float) -> Choice:
    """``--cfg-from`` (a sweep) or ``--cfg`` (a number), never both; else the config's."""
    if cfg_from and cli_w is not None:
        raise UserError("give --cfg or --cfg-from, not both")
    if cfg_from:
        return from_sweep(cfg_from)
    if cli_w is not None:
        return fixed(cli_w, "--cfg")
    return fixed(config_w, "sample.cfg")


def selection_of(scale: dict) -> str:
    """How w was picked, from a result's scale (sample meta); older files: from the number."""
    if scale.get("cfg_selection"):
        return str(scale["cfg_selection"])
    w = scale.get("cfg")
    if w is None:
        return ""
    return UNGUIDED_NOTE if float(w) == 1.0 else f"w = {float(w):g} (how it was picked: not recorded)"
