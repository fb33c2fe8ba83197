"""Rendering: numbers as cells, one paper table as Markdown, CSV, LaTeX or HTML."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from unite.atomic import atomic_write
from unite.metrics.inputs import INPUT_FLAG
from unite.tables.paper import INPUT_MARK, NOT_LIKE_FOR_LIKE, PAPER

if TYPE_CHECKING:
    from unite.tables.build import Line


def fmt_number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def has_protocols(stem: str) -> bool:
    return any("protocol" in row for row in PAPER[stem]["rows"])


def warnings(lines: list[Line]) -> list[str]:
    unlike = [ln.row for ln in lines if any(n.startswith(NOT_LIKE_FOR_LIKE) for n in ln.notes)]
    if not unlike:
        return []
    return [f"**Warning: {NOT_LIKE_FOR_LIKE}.** Rows from runs of a different training length "
            f"than the others: {'; '.join(unlike)}. Compare them with care."]


def cell(value) -> str:
    return value if isinstance(value, str) else fmt_number(value)


TEXT_COLUMNS = ("Scale of ours", "Provenance of ours", "Notes")  # left out of the LaTeX version


def header(stem: str) -> list[str]:
    cols = PAPER[stem]["columns"]
    protocol = ["Paper's protocol"] if has_protocols(stem) else []
    return (["Row", "Ours from"] + protocol
            + [f"{h} {who}" for h in cols.values() for who in ("paper", "ours")] + list(TEXT_COLUMNS))


def row_cells(stem: str, line: Line) -> list[str]:
    cells = [line.row, line.experiment or "-"]
    if has_protocols(stem):
        cells.append(line.protocol or "-")
    for key in PAPER[stem]["columns"]:
        paper = line.paper.get(key)
        ours = cell(line.ours.get(key)) if line.role else "-"
        if line.flagged and isinstance(line.ours.get(key), (int, float)):
            ours += INPUT_MARK
        cells += [f"{paper:g}" if isinstance(paper, (int, float)) else "-", ours]
    return cells + [line.scale or "-", line.provenance or "-", "; ".join(line.notes)]


def to_markdown(stem: str, lines: list[Line]) -> str:
    head = header(stem)
    esc = [[c.replace("|", "\\|") for c in row_cells(stem, ln)] for ln in lines]
    out = [f"### {PAPER[stem]['title']}", ""]
    out += [w + "\n" for w in warnings(lines)]
    out += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in esc]
    out += ["", PAPER[stem]["note"], ""]
    if any(ln.flagged for ln in lines):
        out[-1:-1] = [f"`{INPUT_MARK.strip()}`: the evaluator flagged the inputs of this number "
                      f"(notes: `{INPUT_FLAG.strip()}` ...)."]
    return "\n".join(out)


def to_csv(stem: str, lines: list[Line], path: Path) -> None:
    with atomic_write(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header(stem))
        for ln in lines:
            writer.writerow(row_cells(stem, ln))


def write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\~{}"),
                 ("^", r"\^{}")):
        text = text.replace(a, b) if a != "\\" else text.replace(a, "\0")
    return text.replace("\0", r"\textbackslash{}")


def to_latex(stem: str, lines: list[Line]) -> str:
    keep = len(header(stem)) - 2  # provenance and notes stay in the Markdown/CSV/HTML versions
    head = header(stem)[:keep]
    out = [f"% {PAPER[stem]['title']}"] + [f"% {w}" for w in warnings(lines)]
    out += [r"\begin{tabular}{l" + "l" * (len(head) - 1) + "}",
           r"\toprule", " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule"]
    for ln in lines:
        out.append(" & ".join(latex_escape(c) for c in row_cells(stem, ln)[:keep]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(out)


def html_table(title: str, head: list[str], rows: list[list[str]], notes: list[str]) -> str:
    """A self-contained HTML page with one table (the Snakemake report shows HTML inline)."""
    from html import escape

    style = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:3px 6px;vertical-align:top}"
             "th{background:#eee}td{max-width:40em;overflow-wrap:anywhere}")
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
           f"<style>{style}</style></head><body><h3>{escape(title)}</h3><table><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head] + ["</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    out += [f"<p>{escape(n)}</p>" for n in notes if n]
    out.append("</body></html>\n")
    return "\n".join(out)
