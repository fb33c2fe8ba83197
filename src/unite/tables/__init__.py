"""``python -m unite tables``: the paper's Tables 1-6 with our numbers beside them.

The paper's numbers live in one dict, :data:`PAPER` (REFERENCE section 5). Our numbers come
from the metric JSON files the evaluators write (experiment, kind, metrics, scale, flags),
found under ``--results``: the workflow writes them as ``RESULTS/metrics/<experiment>/<source>.json``
with ``<source>`` = ``gen_<protocol>``, ``recon_trained``, ``recon_finetuned`` or ``cfg_sweep``.

A paper row names the *role* it plays (``unite-b``, ``unite-b-separate``, ...: the names of the
paper configs). Which of our experiments fills a role is ``--role ROLE=EXPERIMENT`` (the
embedded default lets the digits run stand in for UNITE-B); without one, the experiment of
the same name. Every row says at which scale ours was obtained, because a digits run next to
an ImageNet number is a different experiment, not a failed reproduction. A role nobody ran
reads "not run"; a fine-tuning row whose checkpoint was not fine-tuned reads "not fine-tuned".
The scale column says whether a result's decoder was GAN-fine-tuned (steps, epochs, loss), and
"fine-tuning not applicable" for molecules and crystals, which the paper does not fine-tune.
A column may read another metric file than its row (``column_sources``): Table 1's "gFID
before decoder FT" reads the primary protocol's samples decoded with the trained decoder.

Modules: :mod:`~unite.tables.paper` (the paper's numbers and the shared vocabulary),
:mod:`~unite.tables.results` (reading our records), :mod:`~unite.tables.build` (one table's
rows), :mod:`~unite.tables.render` (Markdown/CSV/LaTeX/HTML), :mod:`~unite.tables.sweep_table`
and :mod:`~unite.tables.provenance_table`; this one writes them all and runs the command.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import sys
from pathlib import Path

from unite.atomic import atomic_write, file_set
from unite.errors import UserError
from unite.tables.build import build_table, role_experiments, scale_parts
from unite.tables.paper import (
    ALL_STEMS as ALL_STEMS,  # read by the workflow (workflow/rules/common/)
)
from unite.tables.paper import PAPER, TABLE_FORMATS, TABLE_STEMS
from unite.tables.provenance_table import write_provenance_table
from unite.tables.render import (
    fmt_number,
    header,
    html_table,
    row_cells,
    to_csv,
    to_latex,
    to_markdown,
    warnings,
    write_text,
)
from unite.tables.results import read_results
from unite.tables.sweep_table import write_sweep_table


def write_tables(results_dir, out_dir, roles: dict, primary: str) -> list[Path]:
    results = read_results(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in TABLE_STEMS:
        lines = build_table(stem, results, roles, primary)
        write_text(out / f"{stem}.md", to_markdown(stem, lines))
        to_csv(stem, lines, out / f"{stem}.csv")
        write_text(out / f"{stem}.tex", to_latex(stem, lines))
        write_text(out / f"{stem}.html",
                   html_table(PAPER[stem]["title"], header(stem),
                              [row_cells(stem, ln) for ln in lines],
                              [*warnings(lines), PAPER[stem]["note"]]))
        written += [out / f"{stem}.{fmt}" for fmt in TABLE_FORMATS]
    return written + write_sweep_table(results, out) + write_provenance_table(results, out)


# -- one experiment ---------------------------------------------------------------------------
def experiment_rows(results: dict, roles: dict, primary: str, experiment: str) -> str:
    """The paper-table rows one experiment fills and its own metric files, as Markdown: what a
    researcher reads after rerunning that experiment alone (the workflow writes it to
    ``RESULTS/tables/experiments/<experiment>.md``)."""
    out = [f"## Experiment {experiment}", ""]
    for stem in TABLE_STEMS:
        lines = [ln for ln in build_table(stem, results, roles, primary)
                 if ln.role and experiment in role_experiments(roles, ln.role)]
        if lines:
            out.append(to_markdown(stem, lines))
    if len(out) == 2:
        out += ["It fills no row of the paper's tables (the workflow config's `stands_for` "
                "names the rows an experiment fills).", ""]
    out += ["### Its metric files", ""]
    own = [res for (exp, _source), res in sorted(results.items()) if exp == experiment]
    for res in own:
        values = ", ".join(f"{k} {fmt_number(v)}" for k, v in res.metrics.items()
                           if isinstance(v, (int, float, str)))
        if values:  # curves and sweeps hold lists: the tables above show what they feed
            out.append(f"- `{res.path}` ({', '.join(scale_parts(res)) or 'no scale'}): {values}")
    if not own:
        out.append(f"- none yet under the results folder for {experiment!r}")
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def tables_lock(out_dir: Path):
    """Writers of one tables folder take turns: the whole-workflow ``tables`` job and the
    per-experiment refreshes may run at once, and each reads the metric files and writes
    the tables under this lock, so the last writer's tables hold every result."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / f".{out_dir.name}.lock", "a") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX)
        yield


# -- CLI --------------------------------------------------------------------------------------
def parse_roles(items: list[str]) -> dict[str, list[str]]:
    """``ROLE=EXPERIMENT`` items; a role named several times collects its experiments (the
    seeds of a claims run), which the tables report as mean ± sd."""
    known = {row["role"] for t in PAPER.values() for row in t["rows"] if row.get("role")}
    roles: dict[str, list[str]] = {}
    for item in items:
        role, sep, experiment = item.partition("=")
        if not sep or not role or not experiment:
            raise UserError(f"--role expects ROLE=EXPERIMENT, got {item!r}")
        if role not in known:
            raise UserError(f"--role {item}: unknown role {role!r}; roles: {', '.join(sorted(known))}")
        roles.setdefault(role, [])
        if experiment not in roles[role]:
            roles[role].append(experiment)
    return roles


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, help="folder searched for metric JSON files")
    parser.add_argument("--out", required=True, help="output folder for the tables")
    parser.set_defaults(_out_is_folder=True)
    parser.add_argument("--role", action="append", default=[], metavar="ROLE=EXPERIMENT",
                        help="our experiment that fills a paper row's role (repeatable; a role "
                             "given several experiments shows mean ± sd over them)")
    parser.add_argument("--primary", default="heun-balanced",
                        help="sampling protocol whose metrics fill Tables 1, 3, 5 and 6")
    parser.add_argument("--experiment", default="",
                        help="also write the rows this experiment fills (with --rows)")
    parser.add_argument("--rows", default="", metavar="FILE",
                        help="Markdown file for --experiment's rows and metric files")


def run(args: argparse.Namespace) -> None:
    if bool(args.experiment) != bool(args.rows):
        raise UserError("--experiment and --rows go together")
    roles = parse_roles(args.role)
    # one unit: a failure halfway (full disk, a bug in one table) leaves the previous set
    with tables_lock(Path(args.out)), file_set():
        written = write_tables(args.results, args.out, roles, args.primary)
        if args.experiment:
            text = experiment_rows(read_results(args.results), roles, args.primary,
                                   args.experiment)
            with atomic_write(args.rows, "w") as fh:
                fh.write(text)
            written.append(Path(args.rows))
    print(f"tables: wrote {len(written)} files to {args.out}", file=sys.stderr)
