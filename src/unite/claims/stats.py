"""Seed statistics and the verdict rule the claims config declares before the run.

For one comparison, A and B are each a handful of per-seed values. The difference of means
d = mean(B) - mean(A) gets a two-sided interval, either Welch's t interval (unequal
variances; with 3 seeds per side it is wide, as it should be) or a percentile bootstrap that
resamples each side's seeds independently. The verdict then reads only signs:

* expect ``higher``/``lower`` (B relative to A, the paper's direction): **holds** when the
  interval lies entirely on the paper's side of 0, **contradicted** when it lies entirely on
  the other side, otherwise **inconclusive at this scale**;
* expect ``same`` (e.g. gFID unchanged by decoder fine-tuning): **holds** when the interval
  lies within +-margin (a declared fraction of |mean(A)|), **contradicted** when it lies
  entirely outside that band, otherwise inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOLDS = "holds"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive at this scale"
MIXED = "mixed"
NOT_RUN = "not run"
MIN_SEEDS = 2  # an interval needs a spread on each side


@dataclass(frozen=True)
class Interval:
    diff: float  # mean(B) - mean(A)
    lo: float
    hi: float
    method: str

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.diff, self.lo, self.hi))


def summary(values) -> dict:
    """mean, sample standard deviation (ddof 1) and n of per-seed values."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    return {"n": n, "mean": float(x.mean()) if n else math.nan,
            "sd": float(x.std(ddof=1)) if n > 1 else math.nan}


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of one side's mean (the figure's error bar)."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    if len(x) < 2:
        return (math.nan, math.nan)
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))


def welch(a, b, confidence: float = 0.95) -> Interval:
    """Welch's t interval of mean(b) - mean(a)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(b.mean() - a.mean())
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return Interval(diff, math.nan, math.nan, "welch")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0.0:  # every seed gave the same value on both sides: no spread to widen by
        return Interval(diff, diff, diff, "welch")
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(confidence)
    return Interval(diff, float(ci.low), float(ci.high), "welch")


def bootstrap(a, b, confidence: float = 0.95, resamples: int = 10000, seed: int = 0) -> Interval:
    """Percentile bootstrap of mean(b) - mean(a), each side's seeds resampled on its own."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(b.mean() - a.mean())
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return Interval(diff, math.nan, math.nan, "bootstrap")
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    mb = b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(mb - ma, [tail, 100 - tail])
    return Interval(diff, float(lo), float(hi), "bootstrap")


def paired(a, b, method: str = "welch", confidence: float = 0.95, resamples: int = 10000,
           seed: int = 0) -> Interval:
    """Interval of the mean per-seed difference b_i - a_i, for two metric files of the same
    runs (before/after fine-tuning, two samplers on one checkpoint): a t interval ("welch"
    names the t family here) or a percentile bootstrap over the seeds' differences."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError("paired sides need one value per seed on both sides")
    d = b - a
    diff = float(d.mean()) if len(d) else math.nan
    name = f"paired {method}"
    if len(d) < MIN_SEEDS:
        return Interval(diff, math.nan, math.nan, name)
    if d.std(ddof=1) == 0.0:
        return Interval(diff, diff, diff, name)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
        tail = (1.0 - confidence) / 2 * 100
        lo, hi = np.percentile(means, [tail, 100 - tail])
        return Interval(diff, float(lo), float(hi), name)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(confidence)
    return Interval(diff, float(ci.low), float(ci.high), name)


def interval(a, b, method: str = "welch", confidence: float = 0.95, resamples: int = 10000,
             seed: int = 0) -> Interval:
    if method == "welch":
        return welch(a, b, confidence)
    if method == "bootstrap":
        return bootstrap(a, b, confidence, resamples, seed)
    raise ValueError(f"unknown interval method {method!r}")


def verdict(iv: Interval, expect: str, margin: float | None = None) -> str:
    """The declared rule (module docstring); ``margin`` is the +- band of ``same``."""
    if not iv.finite:
        return INCONCLUSIVE
    if expect == "same":
        if margin is None or not math.isfinite(margin):
            return INCONCLUSIVE
        if -margin <= iv.lo and iv.hi <= margin:
            return HOLDS
        if iv.lo > margin or iv.hi < -margin:
            return CONTRADICTED
        return INCONCLUSIVE
    sign = {"higher": 1.0, "lower": -1.0}[expect]
    lo, hi = sorted((sign * iv.lo, sign * iv.hi))
    if lo > 0:
        return HOLDS
    if hi < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """A claim from its rows: holds when every row that ran holds; contradicted when some row
    is contradicted and none holds; mixed when rows hold and others are contradicted; not
    run when no row ran; otherwise inconclusive at this scale."""
    ran = [v for v in verdicts if v != NOT_RUN]
    if not ran:
        return NOT_RUN
    if all(v == HOLDS for v in ran):
        return HOLDS
    if CONTRADICTED in ran:
        return MIXED if HOLDS in ran else CONTRADICTED
    return INCONCLUSIVE


def collapse_verdict(collapsed: int, known: int, expected: str | None) -> str:
    """Claim 8 rows: ``all`` expects every seed to collapse, ``none`` expects none to."""
    if known == 0:
        return NOT_RUN
    if expected is None:
        return f"{collapsed} of {known} collapse"
    if expected == "all":
        return HOLDS if collapsed == known else CONTRADICTED if collapsed == 0 else INCONCLUSIVE
    return HOLDS if collapsed == 0 else CONTRADICTED if collapsed == known else INCONCLUSIVE
