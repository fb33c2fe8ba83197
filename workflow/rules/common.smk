# Config validation, the experiment table and the helpers the rules share. Rules stay thin:
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
        if "trajectory" in merged["analyses"] and unite.kinds.modality(lib.data.kind) != "images":
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


# -- paths ----------------------------------------------------------------------------------
def log(rule_name: str, *wildcards: str) -> str:
    stem = "-".join(f"{{{w}}}" for w in wildcards)
    return f"{RESULTS}/logs/{rule_name}/{stem}.log"


def bench(rule_name: str, *wildcards: str) -> str:
    stem = "-".join(f"{{{w}}}" for w in wildcards)
    return f"{RESULTS}/benchmarks/{rule_name}/{stem}.tsv"


def prepared_path(dataset: str) -> str:
    return f"{RESULTS}/data/{dataset}.{unite.kinds.get(DATA_CFG[dataset].data.kind).prepared}"


def run_dir(exp: str) -> str:
    """Training's own folder: not a Snakemake output, so a re-submitted job finds last.pt.
    One folder per setting (unite.config.run_digest): an edited setting trains afresh.
    """
    e = EXPERIMENTS[exp]
    return f"{RESULTS}/runs/{exp}/{unite.config.run_digest(e['config'], e['set'])}"


def library_files(exp: str) -> list:
    """The experiment's library config and the files it inherits from: editing any of them
    reruns this experiment's training and what follows, and no other experiment's."""
    return [str(f) for f in unite.config.config_files(EXPERIMENTS[exp]["config"])]


def finetune_run_dir(exp: str) -> str:
    """Fine-tuning's own folder (resumable state) inside the training run's, one per setting
    of the `finetune` section (unite.config.finetune_run_name)."""
    return f"{run_dir(exp)}/{unite.config.finetune_run_name(LIB[exp])}"


def ckpt_path(exp: str, stage: str) -> str:
    folder = {"trained": "checkpoints", "finetuned": "finetuned"}[stage]
    return f"{RESULTS}/{folder}/{exp}/{stage}.pt"


def model_checkpoint(exp: str) -> str:
    """The checkpoint that samples are drawn from: fine-tuned when the stage is on."""
    return ckpt_path(exp, "finetuned" if EXPERIMENTS[exp]["finetune"] else "trained")


def recon_stages(exp: str) -> list:
    return ["trained", "finetuned"] if EXPERIMENTS[exp]["finetune"] else ["trained"]


def train_metrics(exp: str) -> str:
    return f"{RESULTS}/checkpoints/{exp}/train_metrics.jsonl"


def finetune_metrics(exp: str) -> str:
    return f"{RESULTS}/finetuned/{exp}/finetune_metrics.jsonl"


def finetune_curves(exp: str) -> str:
    """In the fine-tuning stage's own folder (DVC: one output folder per stage)."""
    return f"{RESULTS}/finetuned/{exp}/finetune_curves.png"


def decodes_before_finetune(exp: str) -> bool:
    """Table 1's "before fine-tuning" gFID: the primary protocol's latents decoded again with
    the trained (not fine-tuned) decoder."""
    return EXPERIMENTS[exp]["finetune"] and modality(exp) == "images"


def trained_decoder_samples(exp: str, protocol: str) -> str:
    return f"{RESULTS}/samples/{exp}/{protocol}_trained_decoder.npz"


def latents_args(wildcards) -> str:
    """Sampling keeps the final latents where `decode` needs them."""
    keep = wildcards.protocol == PRIMARY and decodes_before_finetune(wildcards.exp)
    return "--save-latents" if keep else ""


def recon(exp: str, stage: str) -> str:
    return f"{RESULTS}/recon/{exp}/{stage}.npz"


def samples(exp: str, protocol: str) -> str:
    return f"{RESULTS}/samples/{exp}/{protocol}.npz"


def metric(exp: str, name: str) -> str:
    return f"{RESULTS}/metrics/{exp}/{name}.json"


def sweep_result(exp: str) -> str:
    """The guidance sweep's result. It lives with the samples: the sweep picks the w that every
    protocol's sampling job reads, so it belongs to the sample stage, not to evaluate.
    """
    return f"{RESULTS}/samples/{exp}/cfg_sweep.json"


def reference_stats(dataset: str) -> str:
    return f"{RESULTS}/reference/{dataset}-{config['evaluation']['image_features']}-stats.npz"


def classifier(dataset: str) -> str:
    return f"{RESULTS}/reference/{dataset}-classifier.pt"


def asset_path(name: str) -> str:
    """A configured local file, else where the login-node fetch rule puts the download."""
    asset = config["assets"].get(name)
    if asset is None:
        raise WorkflowError(
            f"config key 'assets.{name}': required by this configuration"
        )
    if asset["path"]:
        return asset["path"]
    if not asset.get("url"):
        raise WorkflowError(
            f"config key 'assets.{name}': set `path` (local file) or `url`"
        )
    return asset.get("dest") or f"{RESULTS}/assets/{name}/{Path(asset['url']).name}"


def fetched_assets() -> dict:
    """Assets the login node downloads: a url and no local path configured."""
    return {n: a for n, a in config["assets"].items() if not a["path"] and a.get("url")}


def vgg_input() -> list:
    """LPIPS's VGG16 weights, where the configuration names them (downloaded or local)."""
    return [asset_path("vgg16_weights")] if "vgg16_weights" in config["assets"] else []


def torch_home_prefix() -> str:
    """LPIPS finds torchvision's VGG16 weights under $TORCH_HOME/hub/checkpoints/."""
    if "vgg16_weights" not in config["assets"]:
        return ""
    home = Path(asset_path("vgg16_weights")).parent.parent.parent
    return f"TORCH_HOME={shlex.quote(str(home))} "


# -- command-line pieces --------------------------------------------------------------------
def set_args(items: list) -> str:
    return " ".join(f"--set {shlex.quote(s)}" for s in items)


def raw_data_input(dataset: str) -> list:
    """The raw files a dataset's preparation reads (downloaded or local)."""
    return [asset_path(a) for a in DATASETS[dataset]["assets"]]


def raw_root_args(dataset: str) -> str:
    """data.root for preparation: the common folder of the dataset's raw files, if any."""
    files = raw_data_input(dataset)
    if not files:
        return ""
    folder = os.path.commonpath([str(Path(f).parent) for f in files])
    return set_args([f"data.root={folder}"])


def data_input(dataset: str) -> list:
    """The prepared file a job reads (none when the dataset is read in place)."""
    return [prepared_path(dataset)] if DATASETS[dataset]["prepare"] else []


def data_root_args(dataset: str) -> str:
    """Point the library at the prepared file (it becomes data.root), when there is one."""
    if DATASETS[dataset]["prepare"]:
        return set_args([f"data.root={prepared_path(dataset)}"])
    return ""


def experiment_args(exp: str) -> str:
    """`--config C --set ...` for commands that rebuild an experiment from its library config."""
    e = EXPERIMENTS[exp]
    # name=<experiment>: checkpoints, samples and metric files then carry the workflow's name
    overrides = set_args(e["set"] + [f"name={exp}"])
    return f"--config {shlex.quote(e['config'])} {overrides} {data_root_args(e['dataset'])}"


def launcher(resources) -> str:
    """How training starts: one process, torchrun on one node, or srun + torchrun per node.
    `gpu` is the job's total GPU count (the plugin's --gpus); srun mode spreads it evenly.
    """
    mode = config["launcher"]["mode"]
    py = shlex.quote(PYTHON)
    if mode == "python":
        return f"{py} -m unite"
    gpus = max(int(resources.gpu), 1)
    if mode == "torchrun":
        return f"{py} -m torch.distributed.run --standalone --nproc_per_node={gpus} -m unite"
    nodes = int(resources.nodes)
    per_node = max(gpus // nodes, 1)
    endpoint = '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
    # --overlap: the rule itself already runs inside a one-task job step
    return (
        f"srun --overlap --nodes={nodes} --ntasks-per-node=1 {py} -m torch.distributed.run "
        f"--nnodes={nodes} --nproc_per_node={per_node} --rdzv_id=$SLURM_JOB_ID "
        f"--rdzv_backend=c10d --rdzv_endpoint={endpoint}:{config['launcher']['port']} -m unite"
    )


def sample_size_args(exp: str, protocol: str) -> str:
    """Class-balanced `--per-class N`, or `--num-samples N` (unconditional / random labels)."""
    e, lib = EXPERIMENTS[exp], LIB[exp]
    per_class = e["per_class"] or lib.sample.per_class
    conditional = modality(exp) == "images"
    total = e["num_samples"] or per_class * (lib.data.num_classes if conditional else 1)
    if not conditional:
        return f"--num-samples {total}"
    if PROTOCOLS[protocol]["random_labels"]:
        return f"--num-samples {total} --random-labels"
    return f"--per-class {per_class}"


def protocol_args(protocol: str, with_cfg: bool = True) -> str:
    """Solver, steps, seed, guidance scale and interval of a sampling protocol."""
    p = PROTOCOLS[protocol]
    args = [f"--solver {p['solver']}", f"--seed {p['seed']}"]
    if "steps" in p:
        args.append(f"--steps {p['steps']}")
    if "cfg" in p and with_cfg:
        args.append(f"--cfg {p['cfg']}")
    if "interval" in p:
        args.append(f"--interval {p['interval'][0]} {p['interval'][1]}")
    return " ".join(args)


def swept(exp: str) -> bool:
    """An image experiment whose guidance scale the CFG sweep picks (Table 1's protocol)."""
    return EXPERIMENTS[exp]["cfg_sweep"] and modality(exp) == "images"


def guidance_input(wildcards) -> dict:
    """The sweep result a sampling job reads its w from (swept experiments only)."""
    return {"sweep": sweep_result(wildcards.exp)} if swept(wildcards.exp) else {}


def guidance_args(exp: str, protocol: str) -> str:
    """Solver etc. of the protocol; w from the sweep (read at job time) when it is swept,
    else the protocol's `cfg` or the library config's sample.cfg."""
    if swept(exp):
        sweep = shlex.quote(sweep_result(exp))
        return f"{protocol_args(protocol, with_cfg=False)} --cfg-from {sweep}"
    return protocol_args(protocol)


def recon_limit_args(exp: str) -> str:
    limit = EXPERIMENTS[exp]["recon_limit"]
    return f"--limit {limit}" if limit else ""


def sweep_size_args(exp: str) -> str:
    """The sweep's samples per scale: sampling.cfg_sweep.num_samples, else the primary's."""
    total = config["sampling"]["cfg_sweep"]["num_samples"]
    if not total:
        return sample_size_args(exp, PRIMARY)
    random = " --random-labels" if PROTOCOLS[PRIMARY]["random_labels"] else ""
    return f"--num-samples {total}{random}"


def feature_weights(dataset: str) -> str:
    """Image feature extractor: the digits classifier trained here, or InceptionV3 weights."""
    if config["evaluation"]["image_features"] == "digits":
        return classifier(dataset)
    return asset_path("inception_weights")


def feature_args(dataset: str) -> str:
    features = config["evaluation"]["image_features"]
    return f"--features {features} --weights {shlex.quote(feature_weights(dataset))}"


# -- resources (SLURM requests come from the config, per rule) ------------------------------
def res(rule_name: str) -> dict:
    table = config["resources"]
    merged = {
        "runtime": 60,
        "mem_mb": 4000,
        "threads": 1,
        "gpu": 0,
        "cpus_per_gpu": 0,
        "nodes": 1,
        "slurm_partition": "",
        "slurm_account": "",
        "slurm_extra": "",
        **table["default"],
        **table.get(rule_name, {}),
    }
    # empty strings mean "cluster default": leave them out so sbatch gets no empty flag
    return {k: v for k, v in merged.items() if v != "" and k != "threads"}


def threads_for(rule_name: str) -> int:
    return {
        **config["resources"]["default"],
        **config["resources"].get(rule_name, {}),
    }.get("threads", 1)


# -- what `all` asks for --------------------------------------------------------------------
def table_files() -> list:
    return [
        f"{RESULTS}/tables/{stem}.{fmt}" for stem in ALL_STEMS for fmt in TABLE_FORMATS
    ]


def experiment_metrics(exp: str) -> list:
    """Every metric file of one experiment (the tables read them all)."""
    files = [metric(exp, f"gen_{p}") for p in EXPERIMENTS[exp]["protocols"]]
    if "adm" in FID_PROTOCOLS and modality(exp) == "images":
        files += [metric(exp, f"adm_{p}") for p in EXPERIMENTS[exp]["protocols"]]
    if decodes_before_finetune(exp):
        files.append(metric(exp, f"gen_{PRIMARY}_trained_decoder"))
    files += [metric(exp, f"recon_{s}") for s in recon_stages(exp)]
    if swept(exp):
        files.append(sweep_result(exp))
    files += [
        f"{RESULTS}/analysis/{exp}/{a}.json" for a in EXPERIMENTS[exp]["analyses"]
    ]
    return files


def all_metrics() -> list:
    return [f for exp in EXPERIMENTS for f in experiment_metrics(exp)]


def experiment_figures(exp: str) -> list:
    files = [f"{RESULTS}/figures/{exp}/loss_curves.png"]
    if modality(exp) == "images":
        files[:0] = [
            f"{RESULTS}/figures/{exp}/samples.png",
            f"{RESULTS}/figures/{exp}/reconstructions.png",
        ]
    else:  # generated molecules / crystal unit cells, marked by validity
        files.append(f"{RESULTS}/figures/{exp}/structures.png")
    return files


def figure_files() -> list:
    """Every figure `all` asks for (the fine-tuning curves live in the finetune stage's
    folder)."""
    return [f for exp in EXPERIMENTS for f in experiment_figures(exp)] + [
        finetune_curves(exp) for exp in EXPERIMENTS if EXPERIMENTS[exp]["finetune"]
    ]


def experiment_rows(exp: str) -> str:
    """The rows of the tables one experiment fills, written when its target refreshes them."""
    return f"{RESULTS}/tables/experiments/{exp}.md"


def experiment_stage_files(exp: str) -> dict:
    """What each stage of one experiment produces (its targets, e.g. `unite_b_separate_train`;
    the names and descriptions come from unite.targets)."""
    metrics = experiment_metrics(exp)
    return {
        "train": [ckpt_path(exp, "trained"), train_metrics(exp)],
        "finetune": (
            [ckpt_path(exp, "finetuned"), finetune_metrics(exp), finetune_curves(exp)]
            if EXPERIMENTS[exp]["finetune"]
            else []
        ),
        "sample": [samples(exp, p) for p in EXPERIMENTS[exp]["protocols"]]
        + (
            [trained_decoder_samples(exp, PRIMARY)]
            if decodes_before_finetune(exp)
            else []
        )
        + ([sweep_result(exp)] if swept(exp) else []),
        "reconstruct": [recon(exp, s) for s in recon_stages(exp)],
        "evaluate": [f for f in metrics if f.startswith(f"{RESULTS}/metrics/")],
        "analyze": [f for f in metrics if f.startswith(f"{RESULTS}/analysis/")],
        "figures": experiment_figures(exp),
        "tables": [experiment_rows(exp)],
    }


def stage_files() -> dict:
    """What each pipeline stage produces (the `stage_*` target rules; DVC runs one each):
    shared data and references, every experiment's stages, and the tables."""
    used = {e["dataset"] for e in EXPERIMENTS.values()}
    image_sets = {EXPERIMENTS[e]["dataset"] for e in image_experiments()}
    reference = [reference_stats(d) for d in sorted(image_sets)]
    if config["evaluation"]["image_features"] == "digits":
        reference += [classifier(d) for d in sorted(image_sets)]
    per_exp = {e: experiment_stage_files(e) for e in EXPERIMENTS}
    stages = {
        "prepare": [prepared_path(d) for d in sorted(used) if DATASETS[d]["prepare"]],
        "reference": reference,
    }
    for stage in ("train", "finetune", "sample", "reconstruct", "evaluate", "analyze"):
        stages[stage] = [f for e in EXPERIMENTS for f in per_exp[e][stage]]
    stages["figures"] = [f for e in EXPERIMENTS for f in per_exp[e]["figures"]]
    stages["tables"] = table_files()
    return stages


def role_args() -> str:
    """Which experiment stands for which paper row (the tables' `--role ROW=EXPERIMENT`)."""
    pairs = [
        f"--role {row}={exp}"
        for exp, e in EXPERIMENTS.items()
        for row in e["stands_for"]
    ]
    return " ".join(pairs)


# -- inputs and command pieces of the sampling and evaluation rules -------------------------
def shard_files(wildcards):
    n = EXPERIMENTS[wildcards.exp]["shards"]
    return [
        f"{RESULTS}/samples/{wildcards.exp}/{wildcards.protocol}/shard{i}-of-{n}.npz"
        for i in range(n)
    ]


def image_reference(wildcards):
    """What image metrics compare against: reference statistics and the feature weights."""
    if modality(wildcards.exp) != "images":
        return {}
    dataset = EXPERIMENTS[wildcards.exp]["dataset"]
    return {"ref": reference_stats(dataset), "weights": feature_weights(dataset)}


def generation_reference(wildcards):
    """Molecules/crystals: the prepared training split, for novelty (when switched on)."""
    dataset = EXPERIMENTS[wildcards.exp]["dataset"]
    if modality(wildcards.exp) == "images" or not config["evaluation"]["novelty"]:
        return {}
    return {"reference": data_input(dataset)}


def evaluate_samples_command(wildcards, input) -> str:
    kind = modality(wildcards.exp)
    if kind == "images":
        dataset = EXPERIMENTS[wildcards.exp]["dataset"]
        return f"images --samples {input.samples} --ref {input.ref} {feature_args(dataset)}"
    reference = f" --reference {input.reference}" if "reference" in input.keys() else ""
    return f"{kind} --samples {input.samples}{reference}"


def validity_args(wildcards) -> str:
    """Molecules: the validity protocol. A params entry of its own (not derived from the
    input), so that Snakemake sees a change and reruns the evaluation and the tables."""
    if modality(wildcards.exp) != "molecules":
        return ""
    return f"--validity-protocol {config['evaluation']['validity_protocol']}"


def adm_reference(wildcards):
    """ADM's reference batch and the Inception weights, for the ADM-protocol evaluation."""
    return {
        "ref": asset_path("adm_reference"),
        "weights": asset_path("inception_weights"),
    }


def evaluate_recon_command(wildcards, input) -> str:
    kind = modality(wildcards.exp)
    if kind == "images":
        dataset = EXPERIMENTS[wildcards.exp]["dataset"]
        return f"recon-images --recon {input.recon} --ref {input.ref} {feature_args(dataset)}"
    return f"{kind} --samples {input.recon}"
