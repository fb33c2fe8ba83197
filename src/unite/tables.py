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
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import io
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from unite.artifacts import read_record
from unite.atomic import atomic_write
from unite.errors import UserError
from unite.metrics.inputs import INPUT_FLAG

TABLE_FORMATS = ("md", "csv", "tex", "html")  # html: shown inside the Snakemake report
NOT_RUN = "not run"
NOT_FINE_TUNED = "not fine-tuned"
FT_NOT_APPLICABLE = "fine-tuning not applicable"
TRAINED_DECODER = "_trained_decoder"  # suffix of the source decoded with the pre-FT decoder
PRIMARY = "primary"  # a row's source "gen_primary" means the --primary sampling protocol
INPUT_MARK = " (!)"  # after our number when such a flag exists
DEFAULT_120EP = "unite-b-120ep"  # Table 2's UNITE-B and every Table 6 default row: one run
NOT_LIKE_FOR_LIKE = "NOT LIKE FOR LIKE"

# The paper's numbers (arXiv 2603.22283; REFERENCE section 5). Per table: a title, the metric
# columns (key in our metric files -> header), and rows: label, role (None = a baseline we do
# not run), the metric file it reads ("source"), the paper's values; `needs_finetune` rows
# only count a checkpoint that was really fine-tuned. Table flags: `guided_paper` (the paper's
# gFIDs are at its best CFG w: an unguided row of ours says it is not like for like),
# `same_length` (every row must come from runs trained for as many steps as the row of
# `reference_role`, else the row is marked NOT LIKE FOR LIKE and the table warns).
PAPER: dict = {
    "table1_generation": {
        "title": "Table 1: ImageNet 256x256 class-conditional generation (gFID lower is better)",
        "columns": {"fid": "gFID (UNITE protocol)",
                    "fid_before_ft": "gFID before decoder FT (UNITE protocol)",
                    "is": "IS (UNITE protocol)",
                    "cfg": "CFG w of our gFID",
                    "best_fid": "gFID at best CFG (sweep, fewer samples)",
                    "best_cfg": "best CFG w",
                    "fid_adm": "gFID (ADM protocol)", "is_adm": "IS (ADM protocol)",
                    "precision_adm": "Precision (ADM)", "recall_adm": "Recall (ADM)"},
        "source": ["gen_primary", "cfg_sweep", "adm_primary"],
        # column -> (metric file, metric key): the same latents through the pre-FT decoder
        "column_sources": {"fid_before_ft": ("gen_primary" + TRAINED_DECODER, "fid")},
        "guided_paper": True,
        "rows": [
            {"row": "UNITE-B", "role": "unite-b", "protocol": "unite",
             "paper": {"fid": 2.12, "fid_before_ft": 2.12, "is": 294.1, "best_fid": 2.12}},
            {"row": "UNITE-L", "role": "unite-l", "protocol": "unite",
             "paper": {"fid": 1.73, "fid_before_ft": 1.73, "is": 296.0, "best_fid": 1.73}},
            {"row": "UNITE-XL", "role": "unite-xl", "protocol": "unite",
             "paper": {"fid": 1.75, "fid_before_ft": 1.75, "is": 309.9, "best_fid": 1.75}},
            {"row": "JiT-B/16 (single-stage baseline)", "protocol": "jit",
             "paper": {"fid": 3.66, "is": 275.1}},
            {"row": "DiT-XL/2 (SD-VAE)", "protocol": "adm",
             "paper": {"fid_adm": 2.27, "is_adm": 278.2}},
            {"row": "SiT-XL/2 (SD-VAE)", "protocol": "adm",
             "paper": {"fid_adm": 2.06, "is_adm": 277.5}},
            {"row": "REPA-B (SD-VAE, DINOv2)", "protocol": "adm",
             "paper": {"fid_adm": 2.15, "is_adm": 268.3}},
        ],
        "note": "Each paper number sits under the protocol it was measured with. UNITE "
        "protocol: torch-fidelity InceptionV3 (inception-v3-compat) against reference "
        "statistics of the ImageNet train set, 50K class-balanced dopri5 samples, best CFG of a "
        "1.0-4.0 sweep (the paper's gFID is that best value). ADM protocol (DiT, SiT, REPA): "
        "ADM's evaluator against VIRTUAL_imagenet256_labeled.npz; ours reads that file's "
        "mu/sigma directly and extracts our samples' features with torch-fidelity's port of the "
        "same Inception graph (sFID not computed). JiT's number is from its own evaluation "
        "(torch-fidelity against JiT's ImageNet statistics, which the UNITE authors' code "
        "reuses). Ours: the primary sampling protocol's full sample set at the w of the 'CFG w' "
        "column: where the experiment ran the guidance sweep, the sweep's best w (picked on "
        "fewer samples per scale, 'gFID at best CFG'), and the notes say how it was picked; "
        "without a sweep the row is unguided and says so. From the GAN-fine-tuned "
        "decoder where the scale says so; 'before decoder FT' decodes the same latents with the "
        "trained decoder (the paper: no adversarial loss in Table 1, and decoder fine-tuning "
        "leaves gFID unchanged, App. A, so its value stands in both gFID columns). The "
        "best-CFG columns come from the guidance sweep where one was run.",
    },
    "table2_reconstruction": {
        "title": "Table 2: ImageNet 256x256 reconstruction (rFID lower is better; UNITE rows "
        "at 120 epochs)",
        "columns": {"rfid": "rFID", "psnr": "PSNR", "lpips": "LPIPS"},
        "same_length": True,
        "reference_role": DEFAULT_120EP,
        "rows": [
            {"row": "UNITE-B", "role": "unite-b-120ep", "source": "recon_trained",
             "paper": {"rfid": 1.01}},
            {"row": "UNITE-B + GAN decoder fine-tuning", "role": "unite-b-120ep",
             "source": "recon_finetuned", "needs_finetune": True, "paper": {"rfid": 0.51}},
            {"row": "UNITE-B, separate weights", "role": "unite-b-separate",
             "source": "recon_trained", "paper": {"rfid": 1.38}},
            {"row": "ViTok-B/16 (no adversarial loss)", "paper": {"rfid": 1.63}},
            {"row": "SD-VAE (adversarial loss)", "paper": {"rfid": 0.62}},
        ],
        "note": "Paper: 50K ImageNet val images, center-cropped; GAN fine-tuning trains the "
        "decoder only, 16 epochs, GE frozen, discriminator initialised from the GE. Ours: "
        "the same reconstruction set before and after fine-tuning; the scale says the "
        "fine-tuning budget and loss.",
    },
    "table3_qm9": {
        "title": "Table 3: QM9 molecules: reconstruction (match, RMSD) and generation (valid, "
        "unique)",
        "columns": {"match_rate": "Match %", "rmsd": "RMSD (A)", "validity": "Valid %",
                    "uniqueness": "Unique %", "validity_connected": "Valid & connected %"},
        "rows": [
            {"row": "UNITE-S", "role": "unite-s-qm9", "source": ["recon_trained", "gen_primary"],
             "paper": {"match_rate": 99.37, "rmsd": 0.039, "validity": 94.90,
                       "uniqueness": 99.71}},
            {"row": "ADiT tokenizer", "paper": {"match_rate": 97.20, "rmsd": 0.075}},
            {"row": "ADiT-S, QM9 only", "paper": {"validity": 96.02, "uniqueness": 97.76}},
            {"row": "GeoLDM", "paper": {"validity": 93.8, "uniqueness": 92.9}},
            {"row": "EDM", "paper": {"validity": 91.9, "uniqueness": 90.7}},
        ],
        "note": "Paper (ADiT's protocol): 10,000 generated molecules; validity = pymatgen "
        "writes PDB with OpenBabel's bonds, RDKit parses it with removeHs=False and sanitises, "
        "and the SMILES of the molecule and of its largest fragment can be written; uniqueness "
        "over valid largest-fragment SMILES. Ours use the same recipe unless the scale column "
        "names another validity protocol. 'Valid & connected' (ours only) also asks for a "
        "single fragment.",
    },
    "table4_protocol": {
        "title": "Table 4: evaluation protocol, same UNITE-B checkpoint (240 epochs)",
        "columns": {"fid": "gFID (UNITE protocol)", "is": "IS", "nfe": "NFE", "cfg": "CFG w",
                    "fid_adm": "gFID (ADM protocol)"},
        "same_length": True,
        "rows": [
            {"row": "Heun, 50 steps, balanced classes", "role": "unite-b", "protocol": "unite",
             "source": ["gen_heun-balanced", "adm_heun-balanced"],
             "paper": {"fid": 2.789, "is": 287.6, "nfe": 100}},
            {"row": "dopri5 (adaptive), balanced classes", "role": "unite-b", "protocol": "unite",
             "source": ["gen_dopri5-balanced", "adm_dopri5-balanced"],
             "paper": {"fid": 2.735, "is": 268.1, "nfe": 108}},
            {"row": "dopri5 (adaptive), random classes", "role": "unite-b", "protocol": "unite",
             "source": ["gen_dopri5-random", "adm_dopri5-random"],
             "paper": {"fid": 2.885, "is": 274.7, "nfe": 108}},
        ],
        "note": "Paper: dopri5 needs about 108 NFE per sample (estimated from wall-clock); it "
        "does not say at which w these rows were sampled (its dopri5-balanced 2.735 is not "
        "Table 1's 2.12 for the same checkpoint). Ours: every row at the same w (the CFG w "
        "column; the sweep's best where the experiment ran one).",
    },
    "table5_mp20": {
        "title": "Table 5: MP20 crystals, 10K generated samples (validity %) and tokenizer "
        "match rate",
        "columns": {"struct_validity": "Struct. %", "comp_validity": "Comp. %",
                    "validity": "Overall %", "match_rate": "Match %"},
        "rows": [
            {"row": "UNITE-S (single-stage)", "role": "unite-s-mp20",
             "source": ["gen_primary", "recon_trained"],
             "paper": {"struct_validity": 99.0, "comp_validity": 89.9, "validity": 87.9,
                       "match_rate": 75.7}},
            {"row": "ADiT tokenizer", "paper": {"match_rate": 84.50}},
            {"row": "ADiT MP20-only, DiT-B (two-stage)",
             "paper": {"struct_validity": 99.6, "comp_validity": 90.5, "validity": 90.1}},
            {"row": "ADiT joint, DiT-B (two-stage)",
             "paper": {"struct_validity": 99.7, "comp_validity": 92.1, "validity": 91.9}},
        ],
        "note": "Paper: StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10); structural "
        "validity = all distances > 0.5 A and volume > 0.1 A^3; compositional = SMACT.",
    },
    "table6_ablations": {
        "title": "Table 6 and Sec. 4: ablations on ImageNet 256 (UNITE-B, 120 epochs)",
        "columns": {"fid": "gFID", "rfid": "rFID", "is": "IS", "cfg": "CFG w"},
        "guided_paper": True,
        "same_length": True,
        "reference_role": DEFAULT_120EP,
        "rows": [
            {"row": "recon noise s_min 0.0 (full noise range)", "role": "unite-b-noise0.0",
             "paper": {"fid": 2.87, "rfid": 1.09, "is": 281.1}},
            {"row": "recon noise s_min 0.6", "role": "unite-b-noise0.6",
             "paper": {"fid": 2.80, "rfid": 1.21, "is": 267.1}},
            {"row": "recon noise s_min 0.7 (default)", "role": DEFAULT_120EP,
             "paper": {"fid": 2.71, "rfid": 1.01, "is": 282.2}},
            {"row": "recon noise s_min 0.8", "role": "unite-b-noise0.8",
             "paper": {"fid": 2.87, "rfid": 1.42, "is": 292.1}},
            {"row": "recon noise 1.0 (no augmentation)", "role": "unite-b-noise-none",
             "paper": {"fid": 6.58, "rfid": 1.60, "is": 275.7}},
            {"row": "recon noise: gaussian sigma 0.7 on every sample (paper text)",
             "role": "unite-b-noise-gaussian0.7", "paper": {}},
            {"row": "time shift: none", "role": "unite-b-shift-none",
             "paper": {"fid": 3.14, "rfid": 1.41, "is": 267.1}},
            {"row": "time shift a = 0.5 (default)", "role": DEFAULT_120EP,
             "paper": {"fid": 2.71, "rfid": 1.01, "is": 282.2}},
            {"row": "time shift a = 0.75", "role": "unite-b-shift0.75",
             "paper": {"fid": 2.93, "rfid": 1.26, "is": 278.0}},
            {"row": "separate weights, stop-gradient", "role": "unite-b-separate",
             "paper": {"fid": 2.60, "rfid": 1.30}},
            {"row": "separate weights, no stop-gradient", "role": "unite-b-separate-nostopgrad",
             "paper": {"fid": 2.24, "rfid": 0.85}},
            {"row": "shared weights, no stop-gradient", "role": "unite-b-nostopgrad",
             "paper": {}},
            {"row": "shared weights, stop-gradient (UNITE; paper: 240 epochs)",
             "role": DEFAULT_120EP, "paper": {"fid": 2.12, "rfid": 1.1}},
            {"row": "1 flow step per reconstruction (Fig. 5; 14 steps = the default row)",
             "role": "unite-b-flow1", "paper": {"fid": 3.33}},
        ],
        "source": ["gen_primary", "recon_trained"],
        "note": "Every default row (recon noise s_min 0.7, shift 0.5, shared weights with "
        "stop-gradient, Fig. 5's 14 flow steps) is ONE run, the 120-epoch UNITE-B, as in the "
        "paper's Table 6; Table 2's UNITE-B row is the same run. Recon-noise rows follow the "
        "paper's labels (0.0 = full noise range, 1.0 = no augmentation), i.e. the released "
        "code's interpolation s*z0 + (1-s)*eps with s ~ U[s_min, 1] on half the batch; the "
        "gaussian row is the paper text's z0 + 0.7 eps (no paper number: the paper's runs used "
        "the code). The paper's UNITE stop-gradient numbers (2.12 / 1.1, Sec. 4) and Fig. 5's "
        "2.12 come from its 240-epoch run; ours is the 120-epoch default, like every other "
        "row. Paper gFIDs are at the best CFG w; ours are where the CFG w column says so.",
    },
}

TABLE_STEMS = tuple(PAPER)
SWEEP_STEM = "cfg_sweep"  # FID per guidance scale, one block per experiment (no paper column)
PROVENANCE_STEM = "provenance"  # every metric file's provenance block, one row each
ALL_STEMS = (*TABLE_STEMS, SWEEP_STEM, PROVENANCE_STEM)

# How the paper's number of a row was measured (the "Paper's protocol" column).
PAPER_PROTOCOLS = {
    "unite": "UNITE (torch-fidelity, ImageNet-train stats)",
    "adm": "ADM evaluator (VIRTUAL_imagenet256_labeled)",
    "jit": "JiT (torch-fidelity, JiT's ImageNet stats)",
}

# Metric keys as the evaluators write them: image metrics measured with the digits
# classifier carry a suffix, so they are never mistaken for Inception numbers.
FEATURE_SUFFIXES = {"": None, "_digits": "digits-classifier features, not Inception"}

# Rates the evaluators write as fractions and the paper prints in percent.
PERCENT = {"match_rate", "validity", "uniqueness", "struct_validity", "comp_validity",
           "validity_connected"}

SCALE_KEYS = (
    ("dataset", "{}"),
    ("model_size", "model {}"),
    ("train_steps", "{} steps"),
    ("epochs", "{} epochs"),
    ("num_samples", "{} samples"),
    ("num_inputs", "{} inputs"),
    ("solver", "{}"),
    ("steps", "{} solver steps"),
    ("nfe", "NFE {}"),
    ("cfg", "cfg {}"),
    ("validity_protocol", "validity {}"),
)


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


# -- reading our results ----------------------------------------------------------------------
@dataclass
class Result:
    """One metric file: where it came from and what it says."""

    experiment: str
    source: str
    kind: str
    metrics: dict
    scale: dict
    flags: list = field(default_factory=list)
    path: str = ""
    provenance: dict = field(default_factory=dict)


def source_of(path: Path) -> str:
    return path.stem


def experiment_of(path: Path, record: dict) -> str:
    """The workflow's experiment name: RESULTS/metrics/<experiment>/<source>.json (the guidance
    sweep: RESULTS/samples/<experiment>/cfg_sweep.json)."""
    if path.parent.parent.name in ("metrics", "samples"):
        return path.parent.name
    return str(record.get("experiment", path.parent.name))


def read_results(results_dir: str | Path) -> dict[tuple[str, str], Result]:
    """Every metric file under ``results_dir``, keyed by (experiment, source)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"--results {root}: no such folder")
    found: dict[tuple[str, str], Result] = {}
    for path in sorted(root.rglob("*.json")):
        record = read_record(path)
        if record is None:
            continue
        res = Result(
            experiment=experiment_of(path, record),
            source=source_of(path),
            kind=str(record["kind"]),
            metrics=record.get("metrics") or {},
            scale=record.get("scale") or {},
            flags=list(record.get("flags") or []),
            path=str(path),
            provenance=record.get("provenance") or {},
        )
        found[(res.experiment, res.source)] = res
    return found


# -- formatting -------------------------------------------------------------------------------
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


def has_protocols(stem: str) -> bool:
    return any("protocol" in row for row in PAPER[stem]["rows"])


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


# The provenance table: one row per metric file, every field of its provenance block.
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
    with tables_lock(Path(args.out)):
        written = write_tables(args.results, args.out, roles, args.primary)
        if args.experiment:
            text = experiment_rows(read_results(args.results), roles, args.primary,
                                   args.experiment)
            with atomic_write(args.rows, "w") as fh:
                fh.write(text)
            written.append(Path(args.rows))
    print(f"tables: wrote {len(written)} files to {args.out}", file=sys.stderr)
