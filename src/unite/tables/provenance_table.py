"""The provenance table: one row per metric file, every field of its provenance block."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from unite.tables.paper import NOT_RUN, PROVENANCE_STEM, TABLE_FORMATS
from unite.tables.render import html_table, latex_escape, write_text

PROVENANCE_COLUMNS = (
    "checkpoint", "checkpoint_sha256", "train_step", "ema", "fine_tuned", "config_hash",
    "git_commit", "git_dirty", "sample_git_commit", "samples", "samples_sha256", "num_samples",
    "seed", "solver", "steps", "nfe", "cfg_scale", "cfg_scales", "guidance_interval",
    "label_sampling", "split", "protocol", "feature_network", "feature_layer", "feature_weights",
    "feature_weights_sha256", "reference", "reference_sha256", "reference_format",
    "reference_dataset", "reference_split", "reference_count", "reference_preprocess",
    "reference_features", "validity_protocol", "novelty_reference_sha256", "toolchain", "missing",
)


def provenance_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """One row per metric file (analysis and loss-curve JSON are not metrics)."""
    from unite.artifacts import RESULT_KINDS

    head = ["experiment", "source", "kind", "file", *PROVENANCE_COLUMNS]
    rows = []
    for (exp, source), res in sorted(results.items()):
        if res.kind not in RESULT_KINDS:
            continue
        p = res.provenance
        values = [p.get(k) for k in PROVENANCE_COLUMNS]
        cells = [json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else
                 ("-" if v is None else str(v)) for v in values]
        rows.append([exp, source, res.kind, res.path, *cells])
    return head, rows


def write_provenance_table(results: dict, out: Path) -> list[Path]:
    """``provenance.{md,csv,tex,html}``: what every number in the tables was computed from."""
    head, rows = provenance_rows(results)
    title = "Provenance of every metric file (the tables' 'Provenance of ours' column in full)"
    note = ("Fields a kind of metric needs but its file lacks are listed under 'missing'; "
            "git_commit is the code that computed the metric, sample_git_commit the code that "
            "wrote the samples; config_hash = sha256 of the checkpoint's resolved config "
            "without its sampling section and data location.")
    if not rows:
        rows = [[NOT_RUN] + [""] * (len(head) - 1)]
    md = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    write_text(out / f"{PROVENANCE_STEM}.md", "\n".join(md + ["", note, ""]))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head)
    writer.writerows(rows)
    write_text(out / f"{PROVENANCE_STEM}.csv", buf.getvalue())
    tex_cols = (0, 1, 4, 5, 9, 10)  # experiment, source, checkpoint (+sha), config hash, commit
    tex = ["% " + title, "\\begin{tabular}{" + "l" * len(tex_cols) + "}",
           " & ".join(latex_escape(head[i]) for i in tex_cols) + " \\\\ \\hline"]
    tex += [" & ".join(latex_escape(r[i]) for i in tex_cols) + " \\\\" for r in rows]
    tex.append("\\end{tabular}")
    write_text(out / f"{PROVENANCE_STEM}.tex", "\n".join(tex) + "\n")
    write_text(out / f"{PROVENANCE_STEM}.html", html_table(title, head, rows, [note]))
    return [out / f"{PROVENANCE_STEM}.{fmt}" for fmt in TABLE_FORMATS]
