# The helpers the rules share, split by concept (included in this order from the Snakefile):
# config.smk (this file: config validation, the experiment table, the tables everything else
# reads, wildcard constraints), paths.smk, args.smk, outputs.smk, inputs.smk. Rules stay thin:
# every job runs one `python -m unite ...` command; all logic lives in src/unite.

import os
import re
import shlex
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from snakemake.exceptions import WorkflowError

import unite.claims.plan
import unite.config
import unite.kinds
import unite.targets
from unite.errors import UserError
from unite.tables import ALL_STEMS, TABLE_FORMATS


# -- validation -----------------------------------------------------------------------------
def _with_defaults(validator_class):
    """A validator that fills `default:` values of the schema while it checks (jsonschema FAQ)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(
                        key, yaml.safe_load(yaml.safe_dump(sub["default"]))
                    )
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def check_workflow_config(cfg: dict, schema_file: str) -> None:
    """Validate against the schema and name the offending key: a typo never runs silently."""
    schema = yaml.safe_load(Path(schema_file).read_text())
    errors = sorted(
        Draft202012Validator(schema).iter_errors(cfg),
        key=lambda e: list(map(str, e.path)),
    )
    if errors:
        lines = [f"config key '{_key(e.absolute_path)}': {e.message}" for e in errors]
        raise WorkflowError("invalid workflow config\n  " + "\n  ".join(lines))
    _with_defaults(Draft202012Validator)(schema).validate(cfg)


EXPERIMENT_FALLBACK = {
    "set": [],
    "stands_for": [],
    "protocols": [],
    "shards": 1,
    "per_class": 0,
    "num_samples": 0,
    "recon_limit": 0,
    "finetune": True,
    "cfg_sweep": False,
    "analyses": [],
}


def experiment_table(cfg: dict) -> tuple[dict, dict]:
    """Experiments with experiment_defaults merged in, checked against datasets/protocols,
    and their library configs (loaded and validated now)."""
    if cfg["sampling"]["primary"] not in cfg["sampling"]["protocols"]:
        raise WorkflowError(
            f"config key 'sampling.primary': {cfg['sampling']['primary']!r} is not one of "
            f"sampling.protocols ({', '.join(cfg['sampling']['protocols'])})"
        )
    table, libs = {}, {}
    for name, spec in cfg["experiments"].items():
        merged = {**EXPERIMENT_FALLBACK, **cfg.get("experiment_defaults", {}), **spec}
        for key in ("config", "dataset"):
            if key not in merged:
                raise WorkflowError(f"config key 'experiments.{name}.{key}': required")
        if merged["dataset"] not in cfg["datasets"]:
            raise WorkflowError(
                f"config key 'experiments.{name}.dataset': {merged['dataset']!r} is not one of "
                f"the datasets ({', '.join(cfg['datasets'])})"
            )
        protocols = [cfg["sampling"]["primary"]] + merged["protocols"]
        merged["protocols"] = list(dict.fromkeys(protocols))
        for p in merged["protocols"]:
            if p not in cfg["sampling"]["protocols"]:
                raise WorkflowError(
                    f"config key 'experiments.{name}.protocols': {p!r} is not one of "
                    f"sampling.protocols ({', '.join(cfg['sampling']['protocols'])})"
                )
        lib = library_config(
            merged["config"], merged["set"], f"config key 'experiments.{name}'"
        )
        merged["finetune"] = finetune_flag(name, spec, merged, lib)
        if (
            "trajectory" in merged["analyses"]
            and unite.kinds.modality(lib.data.kind) != "images"
        ):
            raise WorkflowError(
                f"config key 'experiments.{name}.analyses': trajectory draws decoded images; "
                "it needs an image experiment"
            )
        table[name], libs[name] = merged, lib
    return table, libs


def finetune_flag(name: str, spec: dict, merged: dict, lib) -> bool:
    """Whether the GAN decoder fine-tuning stage runs. The paper fine-tunes image decoders
    only: molecule/crystal experiments are never fine-tuned (their tables say "not
    applicable"), and asking for it explicitly is an error; an image experiment needs a
    budget (finetune.epochs or finetune.steps) in its library config."""
    if unite.kinds.modality(lib.data.kind) != "images":
        if spec.get("finetune"):
            raise WorkflowError(
                f"config key 'experiments.{name}.finetune': {lib.data.kind} experiment: the "
                "paper fine-tunes only the image decoder (App. A); set it to false"
            )
        return False
    if merged["finetune"] and not (lib.finetune.epochs or lib.finetune.steps):
        raise WorkflowError(
            f"config key 'experiments.{name}.finetune': true, but {merged['config']} sets "
            "no budget (finetune.epochs and finetune.steps are 0)"
        )
    return bool(merged["finetune"])


def library_config(path: str, overrides: list, where: str):
    """Load and validate a library config now, so a bad value stops the run before any job."""
    try:
        return unite.config.load(path, overrides)
    except UserError as exc:
        raise WorkflowError(f"{where}: {path}: {exc}") from None


def add_claims(cfg: dict):
    """`claims:` (config/claims.yaml) expanded into experiments, added before validation."""
    if "claims" not in cfg:
        return None
    try:
        plan = unite.claims.plan.expand(cfg)
    except UserError as exc:
        raise WorkflowError(str(exc)) from None
    cfg["experiments"] = {**(cfg.get("experiments") or {}), **plan.experiments}
    return plan


# -- the tables everything below reads ------------------------------------------------------
CLAIMS = add_claims(config)
check_workflow_config(
    config, str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
)
RESULTS = config["results"].rstrip("/")
PYTHON = config.get("python") or sys.executable
EXPERIMENTS, LIB = experiment_table(config)
DATASETS = config["datasets"]
PROTOCOLS = config["sampling"]["protocols"]
PRIMARY = config["sampling"]["primary"]
DATA_CFG = {
    name: library_config(
        d["config"], d.get("set", []), f"config key 'datasets.{name}.config'"
    )
    for name, d in DATASETS.items()
}
for _name, _d in DATASETS.items():
    for _asset in _d["assets"]:
        if _asset not in config["assets"]:
            raise WorkflowError(
                f"config key 'datasets.{_name}.assets': {_asset!r} is not one of the assets"
            )
FID_PROTOCOLS = config["evaluation"]["fid_protocols"]
if "adm" in FID_PROTOCOLS:
    if config["evaluation"]["image_features"] != "inception":
        raise WorkflowError(
            "config key 'evaluation.fid_protocols': adm compares Inception features with ADM's "
            "reference batch; it needs evaluation.image_features: inception"
        )
    if "adm_reference" not in config["assets"]:
        raise WorkflowError(
            "config key 'evaluation.fid_protocols': adm needs assets.adm_reference (ADM's "
            "reference batch, e.g. VIRTUAL_imagenet256_labeled.npz: a local path or url + sha256)"
        )


def modality(exp: str) -> str:
    return unite.kinds.modality(LIB[exp].data.kind)


def image_experiments() -> list:
    return [e for e in EXPERIMENTS if modality(e) == "images"]


wildcard_constraints:
    exp="|".join(map(re.escape, EXPERIMENTS)),
    dataset="|".join(map(re.escape, DATASETS)),
    protocol="|".join(map(re.escape, PROTOCOLS)),
    stage="trained|finetuned",
    shard=r"\d+",
    nshards=r"\d+",
    analysis="alignment|entropy|trajectory",
