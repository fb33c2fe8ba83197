"""Assembling one paper table: the rows, the experiments that fill their roles, our values
beside the paper's, the scale and provenance of each, and the notes (seeds: mean ± sd)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from unite.metrics.inputs import INPUT_FLAG
from unite.tables.paper import (
    FEATURE_SUFFIXES,
    FT_NOT_APPLICABLE,
    NOT_FINE_TUNED,
    NOT_LIKE_FOR_LIKE,
    NOT_RUN,
    PAPER,
    PAPER_PROTOCOLS,
    PERCENT,
    PRIMARY,
    SCALE_KEYS,
    TRAINED_DECODER,
)
from unite.tables.render import fmt_number
from unite.tables.results import Result


def finetune_part(scale: dict) -> str | None:
    """What the scale column says about GAN decoder fine-tuning (None: nothing recorded)."""
    if scale.get("finetune") == "not applicable":
        return FT_NOT_APPLICABLE
    if scale.get("fine_tuned") is False:
        return NOT_FINE_TUNED
    if scale.get("fine_tuned"):
        budget = [f"{fmt_number(scale[k])} {unit}" for k, unit in
                  (("finetune_steps", "steps"), ("finetune_epochs", "epochs"))
                  if scale.get(k) is not None]
        loss = [scale["finetune_loss"]] if scale.get("finetune_loss") else []
        detail = ", ".join(budget + loss)
        return f"GAN-fine-tuned decoder ({detail})" if detail else "GAN-fine-tuned decoder"
    return None


def scale_parts(res: Result, skip: tuple[str, ...] = ()) -> list[str]:
    parts: list[str] = []
    for key, template in SCALE_KEYS:
        value = res.scale.get(key)
        if key in skip or value in (None, "", []):
            continue
        parts.append(template.format(fmt_number(value) if not isinstance(value, str) else value))
    ft = finetune_part(res.scale)
    if ft:
        parts.append(ft)
    if res.scale.get("random_labels"):
        parts.append("random labels")
    return parts


def describe_scale(results: list[Result]) -> str:
    """The scale our number was obtained at: dataset, model, steps, samples, solver ...
    A row fed by several files (generation and reconstruction) says which is which."""
    if len(results) <= 1:
        return ", ".join(scale_parts(results[0])) if results else ""
    shared = ("dataset", "model_size", "train_steps", "epochs")
    first = results[0]
    common = [template.format(fmt_number(first.scale[k]) if not isinstance(first.scale[k], str)
                              else first.scale[k])
              for k, template in SCALE_KEYS
              if k in shared and first.scale.get(k) not in (None, "", [])
              and all(r.scale.get(k) == first.scale[k] for r in results)]
    same = {k for k in shared if all(r.scale.get(k) == first.scale.get(k) for r in results)}
    pieces = [", ".join(common)] if common else []
    for res in results:
        label = "generation" if res.kind.startswith("gen") else (
            "reconstruction" if res.kind.startswith("recon") else res.source)
        if res.scale.get("fid_protocol") == "adm":
            label = "ADM protocol"
        pieces.append(f"{label}: " + ", ".join(scale_parts(res, skip=tuple(same))))
    return "; ".join(pieces)


def lookup(res: Result, key: str) -> tuple[object, str | None]:
    """Our value for a column: a metric (an image metric may carry the digits-feature
    suffix), else a scale entry such as the solver's NFE."""
    if res.kind == "cfg_sweep" and res.metrics.get(key) is not None:
        digits = str(res.metrics.get("fid_key", "")).endswith("_digits")
        return res.metrics[key], FEATURE_SUFFIXES["_digits"] if digits else None
    for suffix, note in FEATURE_SUFFIXES.items():
        if res.metrics.get(key + suffix) is not None:
            return res.metrics[key + suffix], note
    return res.scale.get(key), None


# -- assembling -------------------------------------------------------------------------------
@dataclass
class Line:
    """One output row: the paper's values and ours for each column."""

    row: str
    role: str
    experiment: str
    paper: dict
    ours: dict
    scale: str
    notes: list
    flagged: bool = False  # an evaluator flagged its inputs: our cells carry INPUT_MARK
    protocol: str = ""  # how the paper's number was measured (PAPER_PROTOCOLS)
    provenance: str = ""  # short form of our metric files' provenance blocks


def short_provenance(res: Result) -> str:
    """Checkpoint digest and step, config hash, code commit, reference and feature-weights
    digests of one metric file, 10 hex digits each (the full values: tables/provenance.*)."""
    p = res.provenance
    if not p:
        return f"{res.source}: no provenance recorded"
    short = (lambda v: str(v)[:10] if v else "?")  # noqa: E731
    parts = [f"ckpt {short(p.get('checkpoint_sha256'))}@{p.get('train_step', '?')}",
             f"config {short(p.get('config_hash'))}",
             f"code {short(p.get('git_commit'))}" + ("+dirty" if p.get("git_dirty") else "")]
    if p.get("reference_sha256"):
        parts.append(f"ref {short(p['reference_sha256'])}")
    if p.get("feature_weights_sha256"):
        parts.append(f"features {short(p['feature_weights_sha256'])}")
    if p.get("missing"):
        parts.append(f"missing {', '.join(p['missing'])}")
    return f"{res.source}: " + ", ".join(parts)


def sources_for(row: dict, table: dict, primary: str) -> list[str]:
    sources = row.get("source", table.get("source", "gen_primary"))
    sources = [sources] if isinstance(sources, str) else list(sources)
    out = []
    for s in sources:
        tail = TRAINED_DECODER if s.endswith(TRAINED_DECODER) else ""
        head = s[: len(s) - len(tail)]
        out.append((head.replace(PRIMARY, primary) if head.endswith(PRIMARY) else head) + tail)
    return out


def row_values(row: dict, table: dict, found: list[Result],
               column_results: dict | None = None) -> tuple[dict, list[str]]:
    """Our values for one row from one experiment's metric files, and the notes they carry.
    ``column_results``: column -> (metric key, Result or None) for the table's
    ``column_sources`` (a column read from another metric file than the row's)."""
    notes: list[str] = []
    column_results = column_results or {}
    if row.get("needs_finetune") and not all(r.scale.get("fine_tuned") for r in found):
        not_ft = FT_NOT_APPLICABLE if any(finetune_part(r.scale) == FT_NOT_APPLICABLE
                                          for r in found) else NOT_FINE_TUNED
        ours = dict.fromkeys(table["columns"], not_ft)
    else:
        ours = {}
        for key in table["columns"]:
            value = None
            candidates, metric_key = found, key
            if key in column_results:
                metric_key, other = column_results[key]
                candidates = [other] if other is not None else []
            for res in candidates:
                value, note = lookup(res, metric_key)
                if isinstance(value, (int, float)) and key in PERCENT:
                    value = 100.0 * value
                if value is not None:
                    if note and note not in notes:
                        notes.append(note)
                    break
            ours[key] = value
        notes.extend(guidance_notes(found, table.get("guided_paper", False)))
    for res in found:
        notes.extend(f for f in res.flags if f not in notes)
    return ours, notes


def aggregate(values: list):
    """Several runs of one role (seeds): "mean ± sd (n=N)" of the numbers among them."""
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    if len(nums) < 2:
        return nums[0] if nums else next((v for v in values if v is not None), None)
    return f"{fmt_number(statistics.fmean(nums))} ± {fmt_number(statistics.stdev(nums))} " \
           f"(n={len(nums)})"


def role_experiments(roles: dict, role: str) -> list[str]:
    """The experiments filling a role: one name or a list (seeds); the role's own name when
    nobody was assigned."""
    experiments = roles.get(role, role)
    return [experiments] if isinstance(experiments, str) else list(experiments)


def column_results(table: dict, results: dict, experiment: str, primary: str) -> dict:
    """column -> (metric key, that experiment's Result of the column's own source or None)."""
    out = {}
    for key, (source, metric_key) in table.get("column_sources", {}).items():
        name = sources_for({"source": source}, table, primary)[0]
        out[key] = (metric_key, results.get((experiment, name)))
    return out


def build_table(stem: str, results: dict, roles: dict, primary: str) -> list[Line]:
    """``roles`` maps a role to one experiment or to a list (seeds: mean ± sd over them)."""
    table = PAPER[stem]
    lines, lengths = [], []
    for row in table["rows"]:
        role = row.get("role")
        paper = {k: row["paper"].get(k) for k in table["columns"]}
        protocol = PAPER_PROTOCOLS.get(row.get("protocol", ""), "")
        if role is None:
            lines.append(Line(row["row"], "", "", paper, {}, "paper baseline (not run here)", [],
                              protocol=protocol))
            lengths.append(None)
            continue
        experiments = role_experiments(roles, role)
        runs = [(exp, [results[(exp, s)] for s in sources_for(row, table, primary)
                       if (exp, s) in results]) for exp in experiments]
        runs = [(exp, found) for exp, found in runs if found]
        if not runs:
            lines.append(Line(row["row"], role, "", paper,
                              dict.fromkeys(table["columns"], NOT_RUN), "", [],
                              protocol=protocol))
            lengths.append(None)
            continue
        values = [row_values(row, table, found, column_results(table, results, exp, primary))
                  for exp, found in runs]
        notes = list(dict.fromkeys(n for _, ns in values for n in ns))
        if len(runs) == 1:
            ours, label, scale = values[0][0], runs[0][0], describe_scale(runs[0][1])
        else:
            ours = {k: aggregate([v[k] for v, _ in values]) for k in table["columns"]}
            label = f"{len(runs)} runs: " + ", ".join(exp for exp, _ in runs)
            scale = describe_scale(runs[0][1]) + f"; mean ± sd over {len(runs)} runs (seeds)"
        found_all = [res for _, found in runs for res in found]
        flagged = any(f.startswith(INPUT_FLAG) for res in found_all for f in res.flags)
        lines.append(Line(row["row"], role, label, paper, ours, scale, notes, flagged,
                          protocol=protocol,
                          provenance="; ".join(short_provenance(r) for r in found_all)))
        lengths.append(train_length(found_all))
    if table.get("same_length"):
        mark_unlike_lengths(table, lines, lengths)
    return lines


def guidance_notes(found: list[Result], guided_paper: bool) -> list[str]:
    """How the w of a row's generation was picked; unguided beside a guided paper value."""
    from unite.guidance import UNGUIDED_NOTE, selection_of

    notes = []
    for res in found:
        if not res.kind.startswith("gen") or res.scale.get("cfg") is None:
            continue
        selection = selection_of(res.scale)
        if selection == UNGUIDED_NOTE and guided_paper:
            selection += ": the paper's value is at its best w, not like for like"
        notes.append(selection)
    return list(dict.fromkeys(notes))


def train_length(found: list[Result]) -> int | None:
    """Training steps of the checkpoint behind a row (None when no file says)."""
    steps = {int(r.scale["train_steps"]) for r in found if r.scale.get("train_steps") is not None}
    return max(steps) if steps else None


def mark_unlike_lengths(table: dict, lines: list[Line], lengths: list[int | None]) -> None:
    """Rows trained for another number of steps than the reference row get a loud note."""
    ref_role = table.get("reference_role")
    ref = next((n for ln, n in zip(lines, lengths) if ln.role == ref_role and n), None)
    if ref is None:
        known = [n for n in lengths if n]
        ref = max(set(known), key=known.count) if known else None
    if ref is None:
        return
    what = f"the {ref_role} row" if ref_role else "most rows"
    for line, n in zip(lines, lengths):
        if n and n != ref:
            line.notes.insert(0, f"{NOT_LIKE_FOR_LIKE}: trained {n} steps, {what} {ref}")
