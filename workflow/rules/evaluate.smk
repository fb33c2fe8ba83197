# Metrics: generation (per sampling protocol), reconstruction (trained and fine-tuned
# checkpoints), and the guidance-scale sweep. Every metric file is JSON with experiment,
# kind, metrics, scale and flags; the tables read nothing else.


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


def evaluate_recon_command(wildcards, input) -> str:
    kind = modality(wildcards.exp)
    if kind == "images":
        dataset = EXPERIMENTS[wildcards.exp]["dataset"]
        return f"recon-images --recon {input.recon} --ref {input.ref} {feature_args(dataset)}"
    return f"{kind} --samples {input.recon}"


rule evaluate_samples:
    input:
        unpack(image_reference),
        unpack(generation_reference),
        samples=samples("{exp}", "{protocol}"),
    output:
        metric("{exp}", "gen_{protocol}"),
    params:
        command=evaluate_samples_command,
    log:
        log("evaluate_samples", "exp", "protocol"),
    benchmark:
        bench("evaluate_samples", "exp", "protocol")
    threads: threads_for("evaluate")
    resources:
        **res("evaluate"),
    shell:
        "{PYTHON} -m unite evaluate {params.command} --out {output:q} > {log} 2>&1"


rule reconstruct:
    input:
        ckpt=lambda wc: checkpoint(wc.exp, wc.stage),
        data=lambda wc: data_input(EXPERIMENTS[wc.exp]["dataset"]),
    output:
        f"{RESULTS}/recon/{{exp}}/{{stage}}.npz",
    params:
        limit=lambda wc: EXPERIMENTS[wc.exp]["recon_limit"],
    log:
        log("reconstruct", "exp", "stage"),
    benchmark:
        bench("reconstruct", "exp", "stage")
    threads: threads_for("reconstruct")
    resources:
        **res("reconstruct"),
    shell:
        "{PYTHON} -m unite reconstruct --ckpt {input.ckpt:q} --split val --out {output:q} "
        "--limit {params.limit} > {log} 2>&1"


rule evaluate_recon:
    input:
        unpack(image_reference),
        recon=f"{RESULTS}/recon/{{exp}}/{{stage}}.npz",
        vgg=vgg_input(),
    output:
        metric("{exp}", "recon_{stage}"),
    params:
        command=evaluate_recon_command,
        env=torch_home_prefix(),
    log:
        log("evaluate_recon", "exp", "stage"),
    benchmark:
        bench("evaluate_recon", "exp", "stage")
    threads: threads_for("evaluate")
    resources:
        **res("evaluate"),
    shell:
        "{params.env}{PYTHON} -m unite evaluate {params.command} --out {output:q} > {log} 2>&1"


rule cfg_sweep:
    input:
        unpack(image_reference),
        ckpt=lambda wc: model_checkpoint(wc.exp),
    output:
        metric("{exp}", "cfg_sweep"),
    params:
        features=lambda wc: feature_args(EXPERIMENTS[wc.exp]["dataset"]),
        scales=" ".join(map(str, config["sampling"]["cfg_sweep"]["scales"])),
        size=lambda wc: sample_size_args(wc.exp, PRIMARY),
        protocol=protocol_args(PRIMARY),
    log:
        log("cfg_sweep", "exp"),
    benchmark:
        bench("cfg_sweep", "exp")
    threads: threads_for("cfg_sweep")
    resources:
        **res("cfg_sweep"),
    shell:
        "{PYTHON} -m unite evaluate cfg-sweep --ckpt {input.ckpt:q} --ref {input.ref:q} "
        "{params.features} --scales {params.scales} {params.size} {params.protocol} "
        "--out {output:q} > {log} 2>&1"


rule reconstruction_pairs:
    input:
        ckpt=lambda wc: model_checkpoint(wc.exp),
        data=lambda wc: data_input(EXPERIMENTS[wc.exp]["dataset"]),
    output:
        npz=temp(f"{RESULTS}/figures/{{exp}}/reconstructions.npz"),
        png=report(
            f"{RESULTS}/figures/{{exp}}/reconstructions.png",
            caption="../report/reconstructions.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "reconstructions"},
        ),
    params:
        pairs=config["evaluation"]["pairs"],
    log:
        log("reconstruction_pairs", "exp"),
    threads: threads_for("reconstruct")
    resources:
        **res("reconstruct"),
    shell:
        "{PYTHON} -m unite reconstruct --ckpt {input.ckpt:q} --split val --limit {params.pairs} "
        "--out {output.npz:q} --grid {output.png:q} > {log} 2>&1"
