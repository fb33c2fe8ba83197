# Where every artefact lives: logs, benchmarks, prepared data, run folders, checkpoints,
# samples, metrics, fetched assets. Reads the tables of config.smk.


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
