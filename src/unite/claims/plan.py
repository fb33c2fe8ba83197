"""The ``claims:`` section of a workflow config, checked and expanded into experiments.

A claim compares *variants* of a *base* experiment on one metric per comparison, in the
direction the paper reports, or (claim 8) counts how many seeds of each variant collapse.
A variant is a list of ``--set`` overrides of the base's library config (plus, rarely, an
experiment-level switch such as ``finetune``). Every (base, variant, seed) becomes one
ordinary workflow experiment named ``<base>-<variant>-s<seed>``; two variants that resolve to
the same library config and experiment settings (the default variant, shared by most claims)
are one run, so no training is paid twice.

Import-light on purpose: the workflow imports this module while it parses its rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from unite import config as config_mod
from unite.errors import UserError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
METHODS = ("welch", "bootstrap")
EXPECT = ("higher", "lower", "same")  # B relative to A
COLLAPSE_EXPECT = ("all", "none")
# experiment-level keys a base may set (the rest of an experiment spec is fixed below)
BASE_KEYS = ("config", "dataset", "set", "roles", "shards", "per_class", "num_samples",
             "recon_limit", "finetune")
VARIANT_KEYS = ("set", "finetune", "label")
# where a metric is read when a comparison names no source: generation metrics come from the
# primary sampling protocol's file, reconstruction metrics from the trained checkpoint's
GEN_METRICS = ("fid", "is", "class_accuracy", "validity", "uniqueness", "novelty",
               "struct_validity", "comp_validity")
RECON_METRICS = ("rfid", "psnr", "l1", "lpips", "match_rate", "rmsd")
PRIMARY_SOURCE = "gen_primary"
RECON_SOURCE = "recon_trained"
FINETUNED_SOURCE = "recon_finetuned"
DEFAULTS = {
    "seeds": [0, 1, 2],
    "reference": "default",
    "verdict": {"method": "welch", "confidence": 0.95, "resamples": 10000, "seed": 0,
                "equivalence": 0.10},
    "collapse": {"key": "val_latent_std", "below": 0.1},
}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a variant's metric file (``source``) across the seeds."""

    variant: str
    source: str

    @property
    def label(self) -> str:
        return self.variant if self.source in (PRIMARY_SOURCE, RECON_SOURCE) else (
            f"{self.variant} [{self.source}]")


@dataclass(frozen=True)
class Comparison:
    """B against A on one metric: the paper's values, and the direction of B - A it reports."""

    metric: str
    a: Side
    b: Side
    expect: str
    paper_a: float | None = None
    paper_b: float | None = None
    note: str = ""
    paired: bool = False  # both sides are metric files of the same runs: compare per seed


@dataclass
class Claim:
    id: str
    title: str
    base: str
    comparisons: list[Comparison] = field(default_factory=list)
    collapse: dict[str, str | None] = field(default_factory=dict)  # variant -> all/none/None
    note: str = ""

    @property
    def kind(self) -> str:
        return "collapse" if self.collapse else "compare"

    def variants(self) -> list[str]:
        names = [s.variant for c in self.comparisons for s in (c.a, c.b)] + list(self.collapse)
        return list(dict.fromkeys(names))


@dataclass
class Plan:
    """The checked claims section and the experiments it expands to."""

    seeds: list[int]
    reference: str
    verdict: dict
    collapse: dict
    bases: dict[str, dict]
    variants: dict[str, dict]
    claims: list[Claim]
    primary: str
    runs: dict[tuple[str, str, int], str] = field(default_factory=dict)  # -> experiment
    experiments: dict[str, dict] = field(default_factory=dict)

    def experiment(self, base: str, variant: str, seed: int) -> str:
        return self.runs[(base, variant, seed)]

    def source_file(self, source: str) -> str:
        """``gen_primary`` -> ``gen_<primary protocol>``; other sources are file stems already."""
        return f"gen_{self.primary}" if source == PRIMARY_SOURCE else source

    def needs_finetune(self, side: Side) -> bool:
        """A fine-tuned variant's numbers count only from a checkpoint really fine-tuned."""
        return bool(self.variants[side.variant].get("finetune")) and side.source != RECON_SOURCE

    def inputs(self) -> list[tuple[str, str]]:
        """(experiment, what) pairs the claims read: a metric file stem, or ``train_metrics``."""
        needed: list[tuple[str, str]] = []
        for claim in self.claims:
            for comp in claim.comparisons:
                for side in (comp.a, comp.b):
                    needed += [(self.experiment(claim.base, side.variant, s),
                                self.source_file(side.source)) for s in self.seeds]
            for variant in claim.collapse:
                needed += [(self.experiment(claim.base, variant, s), "train_metrics")
                           for s in self.seeds]
        return list(dict.fromkeys(needed))


# -- checking -----------------------------------------------------------------------------------
def _fail(key: str, msg: str):
    raise UserError(f"config key '{key}': {msg}")


def _mapping(value, key: str) -> dict:
    if not isinstance(value, dict):
        _fail(key, f"expected a mapping, got {value!r}")
    return value


def _known(value: dict, allowed: tuple[str, ...], key: str) -> None:
    for k in value:
        if k not in allowed:
            _fail(f"{key}.{k}", f"unknown key; valid keys here: {', '.join(allowed)}")


def _name(value, key: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not NAME.match(str(value)):
        _fail(key, f"expected a name of letters, digits, '_', '.', '-', got {value!r}")
    return str(value)


def _overrides(value, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) and "=" in s for s in value):
        _fail(key, f"expected a list of key.sub=value overrides, got {value!r}")
    return list(value)


def _number(value, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(key, f"expected a number, got {value!r}")
    return float(value)


def _settings(section: dict) -> tuple[list[int], str, dict, dict]:
    seeds = section.get("seeds", DEFAULTS["seeds"])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        _fail("claims.seeds", f"expected a list of distinct integers >= 0, got {seeds!r}")
    verdict = {**DEFAULTS["verdict"], **_mapping(section.get("verdict", {}), "claims.verdict")}
    _known(verdict, tuple(DEFAULTS["verdict"]), "claims.verdict")
    if verdict["method"] not in METHODS:
        _fail("claims.verdict.method", f"{verdict['method']!r} is not one of {', '.join(METHODS)}")
    if not 0.5 <= _number(verdict["confidence"], "claims.verdict.confidence") < 1.0:
        _fail("claims.verdict.confidence", "must lie in [0.5, 1)")
    if not (isinstance(verdict["resamples"], int) and verdict["resamples"] >= 100):
        _fail("claims.verdict.resamples", "must be an integer >= 100")
    if not isinstance(verdict["seed"], int):
        _fail("claims.verdict.seed", "must be an integer")
    if _number(verdict["equivalence"], "claims.verdict.equivalence") <= 0:
        _fail("claims.verdict.equivalence", "must be > 0 (a fraction of the A mean)")
    collapse = {**DEFAULTS["collapse"], **_mapping(section.get("collapse", {}), "claims.collapse")}
    _known(collapse, tuple(DEFAULTS["collapse"]), "claims.collapse")
    if not isinstance(collapse["key"], str) or not collapse["key"]:
        _fail("claims.collapse.key", "expected the name of an evaluation entry (val_latent_std)")
    _number(collapse["below"], "claims.collapse.below")
    reference = _name(section.get("reference", DEFAULTS["reference"]), "claims.reference")
    return seeds, reference, verdict, collapse


def _bases(section: dict, datasets: dict) -> dict[str, dict]:
    bases = _mapping(section.get("bases"), "claims.bases")
    if not bases:
        _fail("claims.bases", "name at least one base experiment")
    out = {}
    for name, spec in bases.items():
        key = f"claims.bases.{_name(name, 'claims.bases')}"
        spec = dict(_mapping(spec, key))
        _known(spec, BASE_KEYS, key)
        for required in ("config", "dataset"):
            if required not in spec:
                _fail(f"{key}.{required}", "required")
        if datasets and spec["dataset"] not in datasets:
            _fail(f"{key}.dataset", f"{spec['dataset']!r} is not one of the datasets "
                  f"({', '.join(datasets)})")
        spec["set"] = _overrides(spec.get("set", []), f"{key}.set")
        roles = _mapping(spec.get("roles", {}), f"{key}.roles")
        spec["roles"] = {str(v): list(r) for v, r in roles.items()}
        out[str(name)] = spec
    return out


def _variants(section: dict, reference: str) -> dict[str, dict]:
    variants = _mapping(section.get("variants"), "claims.variants")
    out = {}
    for name, spec in variants.items():
        key = f"claims.variants.{_name(name, 'claims.variants')}"
        spec = dict(_mapping(spec or {}, key))
        _known(spec, VARIANT_KEYS, key)
        spec["set"] = _overrides(spec.get("set", []), f"{key}.set")
        if "finetune" in spec and not isinstance(spec["finetune"], bool):
            _fail(f"{key}.finetune", "expected true/false")
        out[str(name)] = spec
    if reference not in out:
        _fail("claims.reference", f"{reference!r} is not one of the variants")
    return out


def _side(value, metric: str, default_source: str | None, variants: dict, key: str) -> Side:
    if isinstance(value, dict):
        _known(value, ("variant", "source"), key)
        variant, source = value.get("variant"), value.get("source", default_source)
    else:
        variant, source = value, default_source
    variant = _name(variant, f"{key}.variant" if isinstance(value, dict) else key)
    if variant not in variants:
        _fail(key, f"{variant!r} is not one of the variants ({', '.join(variants)})")
    if source is None:
        source = (PRIMARY_SOURCE if metric in GEN_METRICS
                  else RECON_SOURCE if metric in RECON_METRICS else None)
    if source is None:
        _fail(f"{key}.source", f"metric {metric!r} has no default metric file: name one "
              "(gen_primary, gen_<protocol>, recon_trained, recon_finetuned)")
    if not re.match(r"^(gen_[A-Za-z0-9_.-]+|recon_trained|recon_finetuned)$", str(source)):
        _fail(f"{key}.source", f"{source!r}: expected gen_primary, gen_<protocol>, "
              "recon_trained or recon_finetuned")
    return Side(variant, str(source))


def _comparison(spec, variants: dict, key: str) -> Comparison:
    spec = _mapping(spec, key)
    _known(spec, ("metric", "a", "b", "source", "expect", "paper", "note", "paired"), key)
    for required in ("metric", "a", "b"):
        if required not in spec:
            _fail(f"{key}.{required}", "required")
    metric = str(spec["metric"])
    a = _side(spec["a"], metric, spec.get("source"), variants, f"{key}.a")
    b = _side(spec["b"], metric, spec.get("source"), variants, f"{key}.b")
    if a == b:
        _fail(key, "A and B are the same variant and metric file")
    paper = spec.get("paper", [None, None])
    if not isinstance(paper, list) or len(paper) != 2:
        _fail(f"{key}.paper", f"expected [A, B] (numbers or null), got {paper!r}")
    pa, pb = _number(paper[0], f"{key}.paper[0]"), _number(paper[1], f"{key}.paper[1]")
    expect = spec.get("expect")
    implied = None if pa is None or pb is None or pa == pb else (
        "higher" if pb > pa else "lower")
    if expect is None:
        if implied is None:
            _fail(f"{key}.expect", "required when the paper gives no two different numbers "
                  f"({', '.join(EXPECT)}: B relative to A)")
        expect = implied
    if expect not in EXPECT:
        _fail(f"{key}.expect", f"{expect!r} is not one of {', '.join(EXPECT)}")
    if implied and expect != "same" and expect != implied:
        _fail(f"{key}.expect", f"{expect!r} contradicts the paper's numbers {pa} -> {pb}")
    paired = spec.get("paired", a.variant == b.variant)
    if not isinstance(paired, bool):
        _fail(f"{key}.paired", "expected true/false")
    if paired and a.variant != b.variant:
        _fail(f"{key}.paired", "pairing by seed needs the same variant on both sides")
    return Comparison(metric, a, b, expect, pa, pb, str(spec.get("note", "")), paired)


def _claims(section: dict, bases: dict, variants: dict) -> list[Claim]:
    items = section.get("list")
    if not isinstance(items, list) or not items:
        _fail("claims.list", "expected a non-empty list of claims")
    claims, seen = [], set()
    for i, spec in enumerate(items):
        key = f"claims.list[{i}]"
        spec = _mapping(spec, key)
        _known(spec, ("id", "title", "base", "compare", "collapse", "note"), key)
        cid = _name(spec.get("id"), f"{key}.id")
        if cid in seen:
            _fail(f"{key}.id", f"claim {cid!r} appears twice")
        seen.add(cid)
        base = spec.get("base")
        if base not in bases:
            _fail(f"{key}.base", f"{base!r} is not one of claims.bases ({', '.join(bases)})")
        if ("compare" in spec) == ("collapse" in spec):
            _fail(key, "give either `compare` (a list of comparisons) or `collapse`")
        claim = Claim(cid, str(spec.get("title", "")), str(base), note=str(spec.get("note", "")))
        if "compare" in spec:
            comps = spec["compare"]
            if not isinstance(comps, list) or not comps:
                _fail(f"{key}.compare", "expected a non-empty list")
            claim.comparisons = [_comparison(c, variants, f"{key}.compare[{j}]")
                                 for j, c in enumerate(comps)]
        else:
            collapse = _mapping(spec["collapse"], f"{key}.collapse")
            if not collapse:
                _fail(f"{key}.collapse", "name at least one variant")
            for variant, expected in collapse.items():
                if variant not in variants:
                    _fail(f"{key}.collapse.{variant}", "not one of the variants")
                if expected not in (*COLLAPSE_EXPECT, None):
                    _fail(f"{key}.collapse.{variant}",
                          f"expected all, none or null (no expectation), got {expected!r}")
            claim.collapse = {str(v): e for v, e in collapse.items()}
        claims.append(claim)
    return claims


# -- expansion ----------------------------------------------------------------------------------
def _identity(spec: dict, lib_dict: dict) -> str:
    """What makes two runs the same: the resolved library config and the experiment settings."""
    lib = {k: v for k, v in lib_dict.items() if k != "name"}
    keys = ("dataset", "finetune", "shards", "per_class", "num_samples", "recon_limit")
    return json.dumps([lib, {k: spec.get(k) for k in keys}], sort_keys=True, default=str)


def expand(workflow_config: dict) -> Plan:
    """Check ``workflow_config['claims']`` and expand it into experiments (``Plan.experiments``,
    specs in the workflow's experiment format). Raises UserError naming the offending key."""
    if workflow_config.get("claims") is None:
        raise UserError("the workflow config has no `claims:` section (see config/claims.yaml)")
    section = _mapping(workflow_config["claims"], "claims")
    _known(section, ("seeds", "reference", "verdict", "collapse", "bases", "variants", "list"),
           "claims")
    seeds, reference, verdict, collapse = _settings(section)
    bases = _bases(section, workflow_config.get("datasets") or {})
    variants = _variants(section, reference)
    claims = _claims(section, bases, variants)
    primary = str((workflow_config.get("sampling") or {}).get("primary", "primary"))
    plan = Plan(seeds, reference, verdict, collapse, bases, variants, claims, primary)

    # the metric files each run must produce: its generation protocols, fine-tuning
    protocols: dict[tuple[str, str], set] = {}
    for claim in claims:
        for variant in claim.variants():
            protocols.setdefault((claim.base, variant), set())
        for comp in claim.comparisons:
            for side in (comp.a, comp.b):
                source = plan.source_file(side.source)
                if source.startswith("gen_") and source != f"gen_{primary}":
                    protocols[(claim.base, side.variant)].add(source[len("gen_"):])
                if side.source == FINETUNED_SOURCE and not variants[side.variant].get("finetune"):
                    _fail(f"claims.variants.{side.variant}.finetune",
                          "must be true: a claim reads its recon_finetuned metrics")
    existing = set(workflow_config.get("experiments") or {})
    by_identity: dict[str, str] = {}
    # declared variant order decides which name a shared run gets (the reference first)
    order = [reference] + [v for v in variants if v != reference]
    for base_name, base in bases.items():
        for variant in order:
            if (base_name, variant) not in protocols:
                continue
            var = variants[variant]
            for seed in seeds:
                name = f"{base_name}-{variant}-s{seed}"
                overrides = base["set"] + var["set"] + [f"train.seed={seed}"]
                spec = {
                    "config": base["config"],
                    "dataset": base["dataset"],
                    "set": overrides,
                    "stands_for": list(base["roles"].get(variant, [])),
                    "protocols": [primary] + sorted(protocols[(base_name, variant)] - {primary}),
                    "finetune": bool(var.get("finetune", base.get("finetune", False))),
                    "cfg_sweep": False,
                    "analyses": [],
                }
                for key in ("shards", "per_class", "num_samples", "recon_limit"):
                    if key in base:
                        spec[key] = base[key]
                try:
                    lib = config_mod.load(base["config"], overrides)
                except UserError as exc:
                    raise UserError(f"claims: base {base_name!r}, variant {variant!r}: "
                                    f"{base['config']}: {exc}") from None
                ident = _identity(spec, config_mod.to_dict(lib))
                if ident in by_identity:  # same settings under another variant name: one run
                    shared = by_identity[ident]
                    plan.runs[(base_name, variant, seed)] = shared
                    roles = plan.experiments[shared]["stands_for"]
                    roles += [r for r in spec["stands_for"] if r not in roles]
                    known = plan.experiments[shared]["protocols"]
                    known += [p for p in spec["protocols"] if p not in known]
                    continue
                if name in existing:
                    _fail("claims", f"the expanded experiment {name!r} is also listed under "
                          "experiments: rename one")
                by_identity[ident] = name
                plan.runs[(base_name, variant, seed)] = name
                plan.experiments[name] = spec
    return plan


def read_workflow_configs(paths: list[str | Path]) -> dict:
    """Merge workflow config files in order, nested keys updated as Snakemake does."""
    merged: dict = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise UserError(f"workflow config not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{path} is not valid YAML: {exc}") from None
        merged = config_mod.deep_update(merged, _mapping(data, str(path)))
    return merged


def load_plan(paths: list[str | Path]) -> Plan:
    return expand(read_workflow_configs(paths))
