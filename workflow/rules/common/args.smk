# Command-line pieces the rules splice into their `python -m unite ...` commands, and the
# per-rule SLURM resources from the config.


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
