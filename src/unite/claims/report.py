"""``python -m unite claims``: the verdict table and figure of the claims run.

Reads what the workflow wrote for each expanded experiment (``RESULTS/metrics/<exp>/<source>.json``
for metrics, ``RESULTS/checkpoints/<exp>/train_metrics.jsonl`` for the collapse detector,
``RESULTS/benchmarks/*/<exp>*.tsv`` for job times) and writes ``claims.{md,csv,tex}`` and
``claims.png``. The statistics and the verdict rule live in :mod:`unite.claims.stats`; the
claims, variants and seeds in the workflow config (:mod:`unite.claims.plan`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from unite.artifacts import read_record
from unite.atomic import atomic_write, file_set
from unite.claims import stats
from unite.claims.plan import Claim, Comparison, Plan, Side, load_plan
from unite.errors import UserError

FORMATS = ("md", "csv", "tex")
# image metrics measured with the digits classifier carry this suffix (unite.tables)
SUFFIXES = ("", "_digits")


# -- reading the runs ---------------------------------------------------------------------------
def metric_path(results: Path, experiment: str, source: str) -> Path:
    return results / "metrics" / experiment / f"{source}.json"


def train_metrics_path(results: Path, experiment: str) -> Path:
    return results / "checkpoints" / experiment / "train_metrics.jsonl"


def read_metric(path: Path, metric: str) -> tuple[float | None, dict]:
    """(value, record) of one metric file; (None, {}) when the file or the value is absent."""
    record = read_record(path)
    if record is None:
        return None, {}
    metrics = record.get("metrics") or {}
    for suffix in SUFFIXES:
        value = metrics.get(metric + suffix)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value), record
    return None, record


def last_eval(path: Path) -> dict:
    """The last ``"kind": "eval"`` line of a run's metrics.jsonl ({} when there is none)."""
    found: dict = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("kind") == "eval":
            found = rec
    return found


@dataclass
class SideValues:
    side: Side
    experiments: list[str]
    values: dict[int, float] = field(default_factory=dict)  # seed -> value
    skipped: list[str] = field(default_factory=list)  # why a seed's value does not count
    scale: dict = field(default_factory=dict)

    @property
    def list(self) -> list[float]:
        return [self.values[s] for s in sorted(self.values)]


def side_values(plan: Plan, claim: Claim, side: Side, metric: str, results: Path) -> SideValues:
    exps = [plan.experiment(claim.base, side.variant, s) for s in plan.seeds]
    out = SideValues(side, list(dict.fromkeys(exps)))
    for seed, exp in zip(plan.seeds, exps):
        value, record = read_metric(metric_path(results, exp, plan.source_file(side.source)),
                                    metric)
        if value is None:
            continue
        scale = record.get("scale") or {}
        if plan.needs_finetune(side) and not scale.get("fine_tuned"):
            out.skipped.append(f"{exp}: checkpoint not fine-tuned (passed through)")
            continue
        out.values[seed] = value
        out.scale = out.scale or scale
    return out


@dataclass
class Row:
    claim: Claim
    comp: Comparison
    a: SideValues
    b: SideValues
    interval: stats.Interval | None
    margin: float | None
    verdict: str


def judge(plan: Plan, claim: Claim, comp: Comparison, results: Path) -> Row:
    a = side_values(plan, claim, comp.a, comp.metric, results)
    b = side_values(plan, claim, comp.b, comp.metric, results)
    v = plan.verdict
    if len(a.values) < stats.MIN_SEEDS or len(b.values) < stats.MIN_SEEDS:
        return Row(claim, comp, a, b, None, None, stats.NOT_RUN)
    if comp.paired:
        seeds = sorted(set(a.values) & set(b.values))
        if len(seeds) < stats.MIN_SEEDS:
            return Row(claim, comp, a, b, None, None, stats.NOT_RUN)
        iv = stats.paired([a.values[s] for s in seeds], [b.values[s] for s in seeds],
                          v["method"], v["confidence"], v["resamples"], v["seed"])
    else:
        iv = stats.interval(a.list, b.list, v["method"], v["confidence"], v["resamples"],
                            v["seed"])
    margin = v["equivalence"] * abs(stats.summary(a.list)["mean"]) if comp.expect == "same" else None
    return Row(claim, comp, a, b, iv, margin, stats.verdict(iv, comp.expect, margin))


@dataclass
class CollapseRow:
    claim: Claim
    variant: str
    expected: str | None
    experiments: list[str]
    values: dict[int, float]  # seed -> collapse-key value at the last evaluation
    psnr: dict[int, float]
    collapsed: int
    verdict: str


def collapse_rows(plan: Plan, claim: Claim, results: Path) -> list[CollapseRow]:
    key, below = plan.collapse["key"], plan.collapse["below"]
    rows = []
    for variant, expected in claim.collapse.items():
        exps = [plan.experiment(claim.base, variant, s) for s in plan.seeds]
        values, psnr = {}, {}
        for seed, exp in zip(plan.seeds, exps):
            ev = last_eval(train_metrics_path(results, exp))
            if isinstance(ev.get(key), (int, float)):
                values[seed] = float(ev[key])
            if isinstance(ev.get("val_psnr"), (int, float)):
                psnr[seed] = float(ev["val_psnr"])
        collapsed = sum(v < below for v in values.values())
        rows.append(CollapseRow(claim, variant, expected, list(dict.fromkeys(exps)), values,
                                psnr, collapsed,
                                stats.collapse_verdict(collapsed, len(values), expected)))
    return rows


def claim_verdict(claim: Claim, rows: list[Row], crows: list[CollapseRow]) -> str:
    if claim.kind == "collapse":
        judged = [r.verdict for r in crows if r.expected is not None]
        if not judged:
            return "measured" if any(r.values for r in crows) else stats.NOT_RUN
        return stats.combine(judged)
    return stats.combine([r.verdict for r in rows])


# -- the run around the numbers -----------------------------------------------------------------
def commit() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes); ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True,
                               timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def job_times(results: Path, experiments: list[str]) -> dict:
    """Summed job seconds and the span from the first job's start to the last job's end, from
    Snakemake's benchmark files of these experiments (start = file time - duration)."""
    total, starts, ends, jobs = 0.0, [], [], 0
    names = set(experiments)
    for path in (results / "benchmarks").glob("*/*.tsv"):
        stem = path.stem
        if stem not in names and not any(stem.startswith(e + "-") for e in names):
            continue
        try:
            lines = path.read_text().splitlines()
            seconds = float(lines[1].split("\t")[0])
        except (OSError, IndexError, ValueError):
            continue
        end = path.stat().st_mtime
        total += seconds
        starts.append(end - seconds)
        ends.append(end)
        jobs += 1
    if not jobs:
        return {"jobs": 0, "job_seconds": None, "span_seconds": None}
    return {"jobs": jobs, "job_seconds": total, "span_seconds": max(ends) - min(starts)}


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def base_scale(plan: Plan, base: str, rows: list[Row]) -> str:
    """Training and evaluation scale of a base's runs, from its library config and metric files."""
    from unite import config as config_mod

    spec = plan.bases[base]
    cfg = config_mod.load(spec["config"], spec["set"])
    m, t = cfg.model, cfg.train
    parts = [f"{base} ({cfg.data.kind} data)",
             f"model {m.size}" + (f" width {m.width}" if m.width else "")
             + (f" depth {m.depth}" if m.depth else ""),
             f"{t.steps} steps x batch {t.batch_size}", f"F = {t.flow_steps_per_recon}",
             f"flow loss from step {t.flow_start}"]
    gen = next((r.a.scale for r in rows if r.claim.base == base and r.a.scale
                and r.comp.a.source.startswith("gen")), {})
    rec = next((r.a.scale for r in rows if r.claim.base == base and r.a.scale
                and r.comp.a.source.startswith("recon")), {})
    if gen.get("num_samples"):
        how = ", ".join(f"NFE {gen[k]}" if k == "nfe" else str(gen[k])
                        for k in ("solver", "nfe") if gen.get(k) is not None)
        parts.append(f"{gen['num_samples']} generated samples" + (f" ({how})" if how else ""))
    if rec.get("num_samples"):
        parts.append(f"{rec['num_samples']} reconstructed val items")
    return ", ".join(parts)


# -- formatting -----------------------------------------------------------------------------------
def num(value: float | None, digits: int = 3) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2e}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def mean_sd(values: list[float]) -> str:
    s = stats.summary(values)
    if not s["n"]:
        return "-"
    sd = f" ± {num(s['sd'])}" if s["n"] > 1 else ""
    return f"{num(s['mean'])}{sd} (n={s['n']})"


def per_seed(values: dict[int, float]) -> str:
    return " ".join(f"s{seed}:{num(v)}" for seed, v in sorted(values.items())) or "-"


def paper_cell(comp: Comparison) -> str:
    if comp.paper_a is None and comp.paper_b is None:
        return "-"
    return f"{num(comp.paper_a)} -> {num(comp.paper_b)}"


def expect_text(comp: Comparison) -> str:
    return {"higher": "B > A", "lower": "B < A", "same": "B = A"}[comp.expect]


def diff_cell(row: Row) -> str:
    if row.interval is None:
        return "-"
    iv = row.interval
    band = f"; band ±{num(row.margin)}" if row.margin is not None else ""
    paired = " paired" if row.comp.paired else ""
    return f"{num(iv.diff)} [{num(iv.lo)}, {num(iv.hi)}]{paired}{band}"


def row_note(row: Row) -> str:
    notes = [*row.a.skipped, *row.b.skipped]
    if row.verdict == stats.NOT_RUN and not notes:
        notes.append(f"fewer than {stats.MIN_SEEDS} seeds with a value on a side")
    if row.comp.note:
        notes.append(row.comp.note)
    return "; ".join(notes)


def rule_text(plan: Plan) -> str:
    v, c = plan.verdict, plan.collapse
    method = ("Welch's t interval" if v["method"] == "welch" else
              f"percentile bootstrap over seeds ({v['resamples']} resamples, seed {v['seed']})")
    pct = f"{100 * v['confidence']:g}%"
    return (f"Per comparison, d = mean(B) - mean(A) over seeds and its {pct} {method}. "
            "**holds**: the interval lies entirely on the paper's side of 0; **contradicted**: "
            f"entirely on the other side; else **{stats.INCONCLUSIVE}**. When A and B are two "
            "metric files of the same runs (same variant), the interval is of the mean per-seed "
            "difference (paired). \"B = A\" (no change) "
            f"holds when the interval lies within ±{100 * v['equivalence']:g}% of |mean(A)| and is "
            "contradicted when it lies entirely outside that band. A claim holds when every "
            "comparison that ran holds, is contradicted when one is and none holds, is mixed when "
            f"some hold and some are contradicted. A run collapsed when its last evaluation's "
            f"`{c['key']}` < {num(c['below'])}. Rows need >= {stats.MIN_SEEDS} seeds per side, "
            "else \"not run\".")


COMPARE_HEADER = ["Claim", "B vs A", "Metric", "Paper A -> B", "Paper says", "Ours A",
                  "Ours B", "d = B - A [CI]", "A per seed", "B per seed", "Verdict", "Notes"]
COLLAPSE_HEADER = ["Claim", "Variant", "Settings", "Collapsed", "collapse key per seed",
                   "val PSNR per seed", "Expected", "Verdict"]


def side_label(comp: Comparison, side: Side) -> str:
    """The variant, with its metric file when that is not the metric's usual one or when both
    sides are the same runs (before/after fine-tuning, two samplers)."""
    if comp.a.variant == comp.b.variant:
        return f"{side.variant} [{side.source}]"
    return side.label


def compare_cells(row: Row) -> list[str]:
    c = row.comp
    return [row.claim.id, f"{side_label(c, c.b)} vs {side_label(c, c.a)}", c.metric,
            paper_cell(c), expect_text(c),
            mean_sd(row.a.list), mean_sd(row.b.list), diff_cell(row), per_seed(row.a.values),
            per_seed(row.b.values), row.verdict, row_note(row)]


def variant_settings(plan: Plan, variant: str) -> str:
    spec = plan.variants[variant]
    parts = list(spec["set"]) + (["finetune"] if spec.get("finetune") else [])
    return spec.get("label") or (", ".join(parts) if parts else "base settings")


def collapse_cells(plan: Plan, row: CollapseRow) -> list[str]:
    return [row.claim.id, row.variant, variant_settings(plan, row.variant),
            f"{row.collapsed} of {len(row.values)}", per_seed(row.values), per_seed(row.psnr),
            row.expected or "-", row.verdict]


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(r) + " |" for r in esc]]


@dataclass
class Report:
    plan: Plan
    rows: list[Row]
    crows: list[CollapseRow]
    verdicts: dict[str, str]
    scales: dict[str, str]
    commit: str
    times: dict
    assembled: str


def spread_rows(report: Report) -> list[list[str]]:
    """Seed-to-seed spread of the reference variant for every metric a claim judges it on."""
    seen, out = set(), []
    for row in report.rows:
        for side, values in ((row.comp.a, row.a), (row.comp.b, row.b)):
            key = (row.claim.base, side, row.comp.metric)
            if side.variant != report.plan.reference or key in seen:
                continue
            seen.add(key)
            s = stats.summary(values.list)
            cv = s["sd"] / abs(s["mean"]) if s["n"] > 1 and s["mean"] else math.nan
            out.append([row.claim.base, side.label, row.comp.metric, num(s["mean"]),
                        num(s["sd"]), f"{100 * cv:.1f}%" if math.isfinite(cv) else "-",
                        str(s["n"]), per_seed(values.values)])
    return out


def to_markdown(report: Report) -> str:
    plan, t = report.plan, report.times
    lines = ["# The paper's claims, tested at embedded scale", "",
             f"- Commit: `{report.commit}`; assembled {report.assembled}.",
             "- Wall time: " + (
                 f"{fmt_duration(t['span_seconds'])} from the first job's start to the last "
                 f"job's end; {fmt_duration(t['job_seconds'])} of job time over {t['jobs']} "
                 "jobs (Snakemake benchmark files; shared data-preparation jobs not counted)."
                 if t["jobs"] else "unknown (no Snakemake benchmark files of these runs)."),
             f"- Seeds: {', '.join(map(str, plan.seeds))} (`train.seed`; sampling uses each "
             "protocol's fixed seed, the same for every run).",
             *[f"- Scale, {b}: {s}." for b, s in report.scales.items()],
             "", "Verdict rule (declared in the config before the run): " + rule_text(plan), "",
             "## Verdicts", ""]
    summary = [[c.id, c.title, report.verdicts[c.id], c.note or "-"] for c in plan.claims]
    lines += md_table(["Claim", "What the paper says", "Verdict", "Note"], summary)
    if report.rows:
        lines += ["", "## Comparisons (A = the paper's choice unless named otherwise)", ""]
        lines += md_table(COMPARE_HEADER, [compare_cells(r) for r in report.rows])
    spread = spread_rows(report)
    if spread:
        lines += ["", f"## Seed-to-seed spread of the `{plan.reference}` variant", ""]
        lines += md_table(["Base", "Variant", "Metric", "Mean", "SD", "CV", "n", "Per seed"],
                          spread)
    if report.crows:
        lines += ["", "## Latent collapse", ""]
        lines += md_table(COLLAPSE_HEADER, [collapse_cells(plan, r) for r in report.crows])
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["claim", "title", "kind", "variant_a", "source_a", "variant_b", "source_b",
              "metric", "paper_a", "paper_b", "expect", "n_a", "mean_a", "sd_a", "n_b", "mean_b",
              "sd_b", "diff", "ci_low", "ci_high", "method", "confidence", "seeds_a", "seeds_b",
              "collapsed", "verdict", "claim_verdict", "notes", "scale", "commit",
              "wall_seconds"]


def csv_rows(report: Report) -> list[dict]:
    plan = report.plan
    common = {"commit": report.commit, "wall_seconds": report.times["span_seconds"],
              "method": plan.verdict["method"], "confidence": plan.verdict["confidence"]}
    out = []
    for r in report.rows:
        sa, sb = stats.summary(r.a.list), stats.summary(r.b.list)
        iv = r.interval
        out.append({**common, "claim": r.claim.id, "title": r.claim.title, "kind": "compare",
                    "variant_a": r.comp.a.variant, "source_a": plan.source_file(r.comp.a.source),
                    "variant_b": r.comp.b.variant, "source_b": plan.source_file(r.comp.b.source),
                    "metric": r.comp.metric, "paper_a": r.comp.paper_a, "paper_b": r.comp.paper_b,
                    "expect": r.comp.expect, "n_a": sa["n"], "mean_a": sa["mean"],
                    "sd_a": sa["sd"], "n_b": sb["n"], "mean_b": sb["mean"], "sd_b": sb["sd"],
                    "diff": iv.diff if iv else None, "ci_low": iv.lo if iv else None,
                    "ci_high": iv.hi if iv else None, "seeds_a": per_seed(r.a.values),
                    "seeds_b": per_seed(r.b.values), "verdict": r.verdict,
                    "claim_verdict": report.verdicts[r.claim.id], "notes": row_note(r),
                    "scale": report.scales.get(r.claim.base, "")})
    for r in report.crows:
        out.append({**common, "claim": r.claim.id, "title": r.claim.title, "kind": "collapse",
                    "variant_a": r.variant, "metric": plan.collapse["key"],
                    "expect": r.expected or "", "n_a": len(r.values),
                    "seeds_a": per_seed(r.values), "collapsed": r.collapsed,
                    "verdict": r.verdict, "claim_verdict": report.verdicts[r.claim.id],
                    "notes": f"val PSNR {per_seed(r.psnr)}",
                    "scale": report.scales.get(r.claim.base, "")})
    return out


def latex_escape(text: str) -> str:
    from unite.tables.render import latex_escape as escape

    return escape(str(text)).replace("±", r"$\pm$")


def to_latex(report: Report) -> str:
    out = [f"% The paper's claims at embedded scale; commit {report.commit}",
           r"\begin{tabular}{llll}", r"\toprule",
           r"Claim & What the paper says & Verdict & Note \\", r"\midrule"]
    out += [" & ".join(latex_escape(x) for x in (c.id, c.title, report.verdicts[c.id],
                                                   c.note or "-")) + r" \\"
            for c in report.plan.claims]
    out += [r"\bottomrule", r"\end{tabular}", ""]
    if report.rows:
        head = COMPARE_HEADER[:8] + ["Verdict"]
        out += [r"\begin{tabular}{" + "l" * len(head) + "}", r"\toprule",
                " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule"]
        for r in report.rows:
            cells = compare_cells(r)
            out.append(" & ".join(latex_escape(x) for x in cells[:8] + [cells[10]]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", ""]
    if report.crows:
        head = COLLAPSE_HEADER[:2] + COLLAPSE_HEADER[3:4] + COLLAPSE_HEADER[6:]
        out += [r"\begin{tabular}{" + "l" * len(head) + "}", r"\toprule",
                " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule"]
        for r in report.crows:
            cells = collapse_cells(report.plan, r)
            out.append(" & ".join(latex_escape(x) for x in cells[:2] + cells[3:4] + cells[6:])
                       + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(out)


# -- figure -------------------------------------------------------------------------------------------
def draw_figure(report: Report, path: Path) -> None:
    """One panel per claim: each seed's value (dots), the mean (bar) and its t interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    claims = report.plan.claims
    cols = min(4, len(claims))
    nrows = -(-len(claims) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.6 * nrows), squeeze=False)
    conf = report.plan.verdict["confidence"]
    for ax, claim in zip(axes.flat, claims):
        title = textwrap.fill(f"{claim.id}: {claim.title}", 48)
        ax.set_title(f"{title}\n{report.verdicts[claim.id]}", fontsize=8)
        if claim.kind == "collapse":
            groups = [(r.variant, list(r.values.values())) for r in report.crows
                      if r.claim is claim]
            ax.axhline(report.plan.collapse["below"], color="red", ls="--", lw=0.8,
                       label="collapse threshold")
            ax.set_ylabel(report.plan.collapse["key"], fontsize=8)
            if any(v > 0 for _, vals in groups for v in vals):
                ax.set_yscale("log")
            ax.legend(fontsize=6)
        else:
            metric = claim.comparisons[0].metric
            groups, seen = [], set()
            for r in report.rows:
                if r.claim is not claim or r.comp.metric != metric:
                    continue
                for side, vals in ((r.comp.a, r.a), (r.comp.b, r.b)):
                    if side not in seen:
                        seen.add(side)
                        groups.append((side_label(r.comp, side), vals.list))
            ax.set_ylabel(metric, fontsize=8)
        for x, (_label, vals) in enumerate(groups):
            if not vals:
                continue
            jitter = [x + 0.08 * (i - (len(vals) - 1) / 2) for i in range(len(vals))]
            ax.scatter(jitter, vals, s=14, color="tab:blue", zorder=3)
            mean = sum(vals) / len(vals)
            ax.hlines(mean, x - 0.25, x + 0.25, color="black", lw=1.5, zorder=4)
            lo, hi = stats.mean_interval(vals, conf)
            if math.isfinite(lo):
                ax.vlines(x + 0.3, lo, hi, color="gray", lw=1.2)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], rotation=30, ha="right", fontsize=7)
        ax.set_xlim(-0.6, max(len(groups), 1) - 0.4)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(claims):]:
        ax.axis("off")
    fig.suptitle(f"Claims at embedded scale (dots: seeds; bar: mean; gray: {100 * conf:g}% t "
                 f"interval of the mean); commit {report.commit}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())


# -- assembling -----------------------------------------------------------------------------------
def build_report(plan: Plan, results: str | Path) -> Report:
    results = Path(results)
    rows, crows, verdicts = [], [], {}
    for claim in plan.claims:
        mine = [judge(plan, claim, comp, results) for comp in claim.comparisons]
        cmine = collapse_rows(plan, claim, results) if claim.collapse else []
        verdicts[claim.id] = claim_verdict(claim, mine, cmine)
        rows += mine
        crows += cmine
    scales = {b: base_scale(plan, b, rows) for b in dict.fromkeys(c.base for c in plan.claims)}
    times = job_times(results, list(plan.experiments))
    return Report(plan, rows, crows, verdicts, scales, commit(), times,
                  time.strftime("%Y-%m-%d %H:%M %Z"))


def write_report(report: Report, tables: str | Path, figure: str | Path) -> list[Path]:
    """The three tables and the figure as one unit (``atomic.file_set``): all or none."""
    tables = Path(tables)
    with file_set():
        with atomic_write(tables / "claims.md", "w") as fh:
            fh.write(to_markdown(report))
        with atomic_write(tables / "claims.csv", "w") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(csv_rows(report))
        with atomic_write(tables / "claims.tex", "w") as fh:
            fh.write(to_latex(report))
        draw_figure(report, Path(figure))
    return [tables / f"claims.{fmt}" for fmt in FORMATS] + [Path(figure)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workflow-config", nargs="+", required=True, metavar="YAML",
                        help="the workflow config file(s) holding the `claims:` section, in the "
                             "order given to snakemake (later files update earlier ones)")
    parser.add_argument("--results", required=True, help="the workflow's results folder")
    parser.add_argument("--tables", required=True, help="folder for claims.{md,csv,tex}")
    parser.add_argument("--figure", required=True, help="output PNG (one panel per claim)")


def run(args: argparse.Namespace) -> None:
    plan = load_plan(args.workflow_config)
    if not Path(args.results).is_dir():
        raise UserError(f"--results {args.results}: no such folder")
    report = build_report(plan, args.results)
    written = write_report(report, args.tables, args.figure)
    for claim in plan.claims:
        print(f"claim {claim.id}: {report.verdicts[claim.id]}", file=sys.stderr)
    print(f"claims: wrote {', '.join(map(str, written))}", file=sys.stderr)
