"""The paper's sampling protocol around the image metrics: the classifier-free-guidance sweep
(w = 1.0 .. 4.0 step 0.2, best FID reported) and the Table 4 analogue (solver x class sampling:
Heun-50 balanced, dopri5 balanced, dopri5 random).

The loops take a sampler and a metric function, so that the same logic runs on a checkpoint
(:func:`checkpoint_sampler` + :func:`unite.metrics.images.generation_metrics`), on the embedded
digits default, and in tests with stand-ins.

Early stopping of the sweep (``patience``): the authors searched w upwards and stopped once FID
got worse; here the sweep stops after ``patience`` consecutive scales that do not beat the best
FID so far (0 = evaluate every scale). The result says which rule ran and where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# (images uint8 (N,H,W,3), labels (N,), NFE per sample)
Sampled = tuple[np.ndarray, np.ndarray, float]
MetricFn = Callable[[np.ndarray, np.ndarray], dict]

PAPER_SCALES = tuple(round(1.0 + 0.2 * i, 1) for i in range(16))  # 1.0, 1.2, ..., 4.0


def stop_rule(patience: int) -> str:
    if patience <= 0:
        return "full sweep: every scale evaluated"
    return (
        f"early stop: the sweep ends after {patience} consecutive scale(s) whose FID does not "
        "improve on the best so far (the authors' upward search stopped once FID rose)"
    )


def cfg_sweep(
    sample: Callable[[float], Sampled],
    metrics: MetricFn,
    *,
    scales: Sequence[float] = PAPER_SCALES,
    fid_key: str = "fid",
    patience: int = 2,
    verbose: bool = True,
) -> dict:
    """Sample and score each guidance scale in order -> the ``metrics`` of a cfg_sweep result."""
    from tqdm import tqdm

    if not scales:
        raise ValueError("no guidance scales to sweep")
    points: list[dict] = []
    best: dict | None = None
    since_best = 0
    early = False
    bar = tqdm(list(scales), desc="cfg sweep", unit="scale", disable=not verbose)
    for i, w in enumerate(bar):
        images, labels, nfe = sample(float(w))
        point = {"cfg": float(w), "nfe": nfe, **metrics(images, labels)}
        points.append(point)
        if best is None or point[fid_key] < best[fid_key]:
            best, since_best = point, 0
        else:
            since_best += 1
        bar.set_postfix({fid_key: f"{point[fid_key]:.3f}", "best_w": best["cfg"]})
        if patience > 0 and since_best >= patience and i < len(scales) - 1:
            early = True
            break
    return {
        "best_cfg": best["cfg"],
        "best_fid": best[fid_key],
        "best": best,
        "fid_key": fid_key,
        "points": points,
        "scales_planned": [float(w) for w in scales],
        "scales_evaluated": [p["cfg"] for p in points],
        "early_stopped": early,
        "stop_rule": stop_rule(patience),
    }


@dataclass(frozen=True)
class ProtocolRow:
    key: str
    label: str  # as in the paper's Table 4
    solver: str
    class_sampling: str  # balanced | random


TABLE4_ROWS = (
    ProtocolRow("heun50_balanced", "Heun-50, class-balanced", "heun", "balanced"),
    ProtocolRow("dopri5_balanced", "dopri5, class-balanced", "dopri5", "balanced"),
    ProtocolRow("dopri5_random", "dopri5, random classes", "dopri5", "random"),
)


def table4(
    sample: Callable[[str, np.ndarray], Sampled],
    metrics: MetricFn,
    labels: dict[str, np.ndarray],
    *,
    heun_steps: int = 50,
    rows: Sequence[ProtocolRow] = TABLE4_ROWS,
    verbose: bool = True,
) -> list[dict]:
    """One scored sample set per (solver, class sampling) row. ``sample(solver, labels)``;
    ``labels`` maps "balanced"/"random" to the label lists (same length)."""
    from tqdm import tqdm

    out = []
    for row in tqdm(rows, desc="protocol", unit="row", disable=not verbose):
        images, y, nfe = sample(row.solver, labels[row.class_sampling])
        out.append(
            {
                "row": row.key,
                "label": row.label,
                "solver": row.solver,
                "steps": heun_steps if row.solver == "heun" else None,
                "class_sampling": row.class_sampling,
                "nfe": nfe,
                **metrics(images, y),
            }
        )
    return out


def checkpoint_sampler(
    model, cfg, *, interval, seed: int, batch_size: int, device: str, steps: int
) -> Callable[..., Sampled]:
    """``sample(solver, labels, cfg_scale)`` through :func:`unite.sampling.generate`."""
    from unite.sampling import generate

    def sample(solver: str, labels: np.ndarray, cfg_scale: float) -> Sampled:
        arrays, nfe = generate(
            model, cfg, labels, solver=solver, steps=steps, cfg_scale=cfg_scale,
            interval=interval, seed=seed, device=device, batch_size=batch_size,
        )
        return arrays["images"], arrays["labels"], nfe

    return sample


def rows_from_results(named: dict[str, dict]) -> list[dict]:
    """Table 4 rows from ``gen_images`` result objects (samples made by sample/gather jobs)."""
    labels = {r.key: r for r in TABLE4_ROWS}
    rows = []
    for key, res in named.items():
        scale, row = res.get("scale", {}), labels.get(key)
        rows.append(
            {
                "row": key,
                "label": row.label if row else key,
                "solver": scale.get("solver"),
                "steps": scale.get("steps"),
                "class_sampling": scale.get("label_mode"),
                "nfe": scale.get("nfe"),
                "cfg": scale.get("cfg"),
                "interval": scale.get("interval"),
                **res.get("metrics", {}),
            }
        )
    return rows
