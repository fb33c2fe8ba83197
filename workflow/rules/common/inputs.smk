# Input functions and command pieces of the sampling and evaluation rules (wildcards in).


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
