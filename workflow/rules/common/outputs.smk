# What `all` and the per-experiment targets ask for: tables, metrics, figures, DVC stages.


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
