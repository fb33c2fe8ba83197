"""The guidance-sweep table: FID/IS per CFG scale of every ``cfg_sweep`` record."""

from __future__ import annotations

import csv
from pathlib import Path

from unite.atomic import atomic_write
from unite.tables.paper import FEATURE_SUFFIXES, NOT_RUN, SWEEP_STEM, TABLE_FORMATS
from unite.tables.render import fmt_number, html_table, latex_escape, write_text


def sweep_rows(results: dict) -> list[dict]:
    """One row per (experiment, guidance scale) of every ``cfg_sweep`` result."""
    rows = []
    for (exp, _source), res in sorted(results.items()):
        if res.kind != "cfg_sweep":
            continue
        m = res.metrics
        fid_key, is_key = m.get("fid_key", "fid"), m.get("is_key", "is")
        suffix = fid_key[len("fid"):]
        for point in m.get("points", []):
            rows.append({
                "experiment": exp,
                "cfg": point.get("cfg"),
                "fid": point.get(fid_key),
                "is": point.get(is_key),
                "class_accuracy": point.get("class_accuracy" + suffix),
                "nfe": point.get("nfe"),
                "num_samples": point.get("num_samples"),
                "best": point.get("cfg") == m.get("best_cfg"),
                "features": FEATURE_SUFFIXES.get(suffix) or "Inception",
                "stop_rule": m.get("stop_rule", ""),
            })
    return rows


def write_sweep_table(results: dict, out: Path) -> list[Path]:
    """``cfg_sweep.{md,csv,tex}``: FID/IS per guidance scale (the paper reports only the best)."""
    rows = sweep_rows(results)
    columns = ["experiment", "cfg", "fid", "is", "class_accuracy", "nfe", "num_samples", "best"]
    title = ("Guidance sweep: FID per CFG scale w (the best w is the w of the experiment's "
             "full sample sets: Tables 1, 4 and 6)")
    md = [f"### {title}", "", "| " + " | ".join(columns) + " |",
          "|" + "---|" * len(columns)]
    for r in rows:
        md.append("| " + " | ".join("**best**" if c == "best" and r[c] else
                                    ("" if c == "best" else fmt_number(r[c])) for c in columns)
                  + " |")
    if not rows:
        md.append("| " + " | ".join([NOT_RUN] + [""] * (len(columns) - 1)) + " |")
    notes = sorted({f"{r['experiment']}: {r['features']}; {r['stop_rule']}" for r in rows})
    md += [""] + notes + ["Paper: w from 1.0 to 4.0 in steps of 0.2; only the best is reported."]
    write_text(out / f"{SWEEP_STEM}.md", "\n".join(md) + "\n")
    with atomic_write(out / f"{SWEEP_STEM}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*columns, "features", "stop_rule"])
        writer.writeheader()
        writer.writerows(rows)
    tex = ["\\begin{tabular}{" + "l" * len(columns) + "}",
           " & ".join(latex_escape(c) for c in columns) + " \\\\ \\hline"]
    tex += [" & ".join(latex_escape(fmt_number(r[c])) for c in columns) + " \\\\" for r in rows]
    tex.append("\\end{tabular}")
    write_text(out / f"{SWEEP_STEM}.tex", "\n".join(tex) + "\n")
    cells = [[("best" if r[c] else "") if c == "best" else fmt_number(r[c]) for c in columns]
             for r in rows]
    write_text(out / f"{SWEEP_STEM}.html", html_table(title, columns, cells, md[-len(notes) - 1:]))
    return [out / f"{SWEEP_STEM}.{fmt}" for fmt in TABLE_FORMATS]
