"""The classifier-free-guidance sweep (w = 1.0 .. 4.0 step 0.2, best FID reported) and its
``cfg_sweep`` result object.

The loop takes a sampler and a metric function, so that the same logic runs on a checkpoint
(:func:`checkpoint_sampler` + :func:`unite.metrics.images.generation_metrics`), on the embedded
digits default, and in tests with stand-ins. Table 4 (solver x class sampling) is not made
here: the workflow samples each of its protocols as ordinary sample sets, scores them with
``evaluate images`` and ``unite.tables`` reads those results.

Early stopping of the sweep (``patience``): the authors searched w upwards and stopped once FID
got worse; here the sweep stops after ``patience`` consecutive scales that do not beat the best
FID so far (0 = evaluate every scale). The result says which rule ran and where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def sweep_result(
    metrics: dict, *, experiment: str, spec, ref_stats: dict, ref_meta: dict, ref_path,
    scale: dict, scales: Sequence[float], num_samples: int,
) -> dict:
    """The ``cfg_sweep`` result object: the sweep's ``metrics`` (:func:`cfg_sweep`), flags on
    sample counts, early stopping and the reference, and the provenance of the run. ``scale``
    holds the checkpoint's and the reference's scale fields plus the sampling settings."""
    from unite.artifacts import result
    from unite.metrics.features import INCEPTION
    from unite.metrics.images import PAPER_NUM_SAMPLES, image_provenance, sample_count_flags
    from unite.metrics.reference import ref_flags
    from unite.provenance import missing_flag

    metrics["is_key"] = spec.name("is")
    n = num_samples
    flags = sample_count_flags(n, None, len(ref_stats["mu"]), "FID per scale")
    if spec.kind == INCEPTION and n < PAPER_NUM_SAMPLES:
        flags.append(f"sweep FIDs on {n} samples per scale (final numbers: sample 50K at best_cfg)")
    if metrics["early_stopped"]:
        flags.append(f"sweep stopped early after w={metrics['scales_evaluated'][-1]}: {metrics['stop_rule']}")
    flags += ref_flags(ref_meta)
    prov = image_provenance("cfg_sweep", spec, ref_path, ref_meta, meta=scale, cfg_scales=scales)
    return result(experiment=experiment, kind="cfg_sweep", metrics=metrics, scale=scale,
                  flags=flags + missing_flag(prov), provenance=prov)
