"""Training dynamics (paper Fig. 4): reconstruction and flow losses (and validation metrics)
against the optimizer step, read from a run's ``metrics.jsonl``. The same reader draws a GAN
fine-tuning run's log (generator/discriminator losses, logits, adaptive weight).

The log is read leniently because it is written by a live process: blank lines are ignored,
a truncated or malformed line (a run killed mid-write) is skipped and counted, records
without a ``step`` are skipped, and when a resumed run logs a step again the later record
wins field by field. Missing fields simply leave gaps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from unite.errors import UserError

LOSS_PANELS = (
    ("reconstruction loss", ("recon", "l1", "lpips")),
    ("flow (denoising) loss", ("flow",)),
    # GAN decoder fine-tuning (unite.finetune); absent from joint-training logs
    ("generator adversarial loss", ("g_adv",)),
    ("discriminator loss", ("d_loss",)),
    ("discriminator logits", ("d_real", "d_fake")),
    ("adversarial weight", ("adv_weight",)),
)
VAL_NAMES = {"val_psnr": "validation PSNR (dB)", "val_l1": "validation L1",
             "val_fid": "validation FID", "val_latent_std": "latent std across val items"}
LINESTYLES = ("-", "--", ":", "-.")


def read_metrics(path: str | Path) -> tuple[dict[int, dict[str, float]], list[str]]:
    """-> ({step: {field: value}}, flags). Only finite numeric fields are kept."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"metrics file not found: {path}")
    records: dict[int, dict[str, float]] = {}
    bad = no_step = repeated = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), (int, float)):
            no_step += 1
            continue
        step = int(rec["step"])
        values = {
            k: float(v)
            for k, v in rec.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)
        }
        if step in records and set(values) & set(records[step]):
            repeated += 1
        records.setdefault(step, {}).update(values)
    flags = []
    if bad:
        flags.append(f"{bad} malformed line(s) skipped (truncated write?)")
    if no_step:
        flags.append(f"{no_step} record(s) without a numeric 'step' skipped")
    if repeated:
        flags.append(f"{repeated} step(s) logged twice (resumed run?): later values kept")
    if not records:
        raise UserError(f"{path} holds no records with a 'step' field")
    return dict(sorted(records.items())), flags


def series(records: dict[int, dict[str, float]]) -> dict[str, tuple[list[int], list[float]]]:
    """field -> (steps, values), over the steps where the field was logged."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for step, values in records.items():
        for k, v in values.items():
            steps, vals = out.setdefault(k, ([], []))
            steps.append(step)
            vals.append(v)
    return out


def summarize(curves: dict[str, tuple[list[int], list[float]]]) -> dict:
    """Final, min and max value of every field, and the step of the final value."""
    return {
        k: {"final": vals[-1], "final_step": steps[-1], "min": min(vals), "max": max(vals),
            "count": len(vals)}
        for k, (steps, vals) in sorted(curves.items())
    }


def ema(values: list[float], factor: float) -> list[float]:
    """Exponential moving average (factor 0 = raw values)."""
    out, acc = [], None
    for v in values:
        acc = v if acc is None else factor * acc + (1 - factor) * v
        out.append(acc)
    return out


def plot_curves(curves, title: str, png, smooth: float = 0.0) -> None:
    """One panel per loss group (recon, flow) plus one per validation metric (``val_*``)."""
    from unite.analysis import pyplot, save_figure

    plt = pyplot()
    panels = [(name, [f for f in fields if f in curves]) for name, fields in LOSS_PANELS]
    panels += [(VAL_NAMES.get(f, "validation " + f.removeprefix("val_").replace("_", " ")), [f])
               for f in sorted(curves) if f.startswith("val_")]
    panels = [(name, fields) for name, fields in panels if fields]
    if not panels:
        known = ", ".join(f for _, fields in LOSS_PANELS for f in fields)
        raise UserError(f"the metrics file has none of the fields {known}, val_*")
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.8 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (name, fields) in zip(axes.flat, panels):
        for field, style in zip(fields, LINESTYLES):
            steps, vals = curves[field]
            marker = "o" if len(vals) < 30 else None
            if smooth > 0:
                (raw,) = ax.plot(steps, vals, alpha=0.25, linestyle=style)
                ax.plot(steps, ema(vals, smooth), color=raw.get_color(), marker=marker,
                        linestyle=style, label=f"{field} (EMA {smooth:g})")
            else:
                ax.plot(steps, vals, marker=marker, linestyle=style, label=field)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, png)
