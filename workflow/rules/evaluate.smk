# Metrics: generation (per sampling protocol; images also against ADM's reference batch
# when evaluation.fid_protocols has adm), reconstruction (trained and fine-tuned
# checkpoints), and the guidance-scale sweep. Every metric file is JSON with experiment,
# kind, metrics, scale and flags; the tables read nothing else.


rule evaluate_samples:
    input:
        unpack(image_reference),
        unpack(generation_reference),
        samples=samples("{exp}", "{protocol}"),
    output:
        metric("{exp}", "gen_{protocol}"),
    log:
        log("evaluate_samples", "exp", "protocol"),
    benchmark:
        bench("evaluate_samples", "exp", "protocol")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("evaluate")
    resources:
        **res("evaluate"),
    params:
        py=PYTHON,
        command=evaluate_samples_command,
        validity=validity_args,
    shell:
        "{params.py:q} -m unite evaluate {params.command} {params.validity} --out {output:q} "
        "> {log} 2>&1"


rule evaluate_samples_adm:
    input:
        unpack(adm_reference),
        samples=samples("{exp}", "{protocol}"),
    output:
        metric("{exp}", "adm_{protocol}"),
    log:
        log("evaluate_samples_adm", "exp", "protocol"),
    benchmark:
        bench("evaluate_samples_adm", "exp", "protocol")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("evaluate")
    resources:
        **res("evaluate"),
    params:
        py=PYTHON,
    shell:
        "{params.py:q} -m unite evaluate images --samples {input.samples:q} --ref {input.ref:q} "
        "--features inception --weights {input.weights:q} --precision-recall --out {output:q} "
        "> {log} 2>&1"


rule reconstruct:
    input:
        ckpt=lambda wc: ckpt_path(wc.exp, wc.stage),
        data=lambda wc: data_input(EXPERIMENTS[wc.exp]["dataset"]),
    output:
        recon("{exp}", "{stage}"),
    log:
        log("reconstruct", "exp", "stage"),
    benchmark:
        bench("reconstruct", "exp", "stage")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("reconstruct")
    resources:
        **res("reconstruct"),
    params:
        py=PYTHON,
        limit=lambda wc: recon_limit_args(wc.exp),
    shell:
        "{params.py:q} -m unite reconstruct --ckpt {input.ckpt:q} --split val --out {output:q} "
        "{params.limit} > {log} 2>&1"


rule evaluate_recon:
    input:
        unpack(image_reference),
        recon=recon("{exp}", "{stage}"),
        vgg=vgg_input(),
    output:
        metric("{exp}", "recon_{stage}"),
    log:
        log("evaluate_recon", "exp", "stage"),
    benchmark:
        bench("evaluate_recon", "exp", "stage")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("evaluate")
    resources:
        **res("evaluate"),
    params:
        py=PYTHON,
        command=evaluate_recon_command,
        env=torch_home_prefix(),
    shell:
        "{params.env}{params.py:q} -m unite evaluate {params.command} --out {output:q} > {log} 2>&1"


rule cfg_sweep:
    input:
        unpack(image_reference),
        ckpt=lambda wc: model_checkpoint(wc.exp),
    output:
        sweep_result("{exp}"),
    log:
        log("cfg_sweep", "exp"),
    benchmark:
        bench("cfg_sweep", "exp")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("cfg_sweep")
    resources:
        **res("cfg_sweep"),
    params:
        py=PYTHON,
        features=lambda wc: feature_args(EXPERIMENTS[wc.exp]["dataset"]),
        scales=" ".join(map(str, config["sampling"]["cfg_sweep"]["scales"])),
        size=lambda wc: sweep_size_args(wc.exp),
        protocol=protocol_args(PRIMARY, with_cfg=False),
    shell:
        "{params.py:q} -m unite evaluate cfg-sweep --ckpt {input.ckpt:q} --ref {input.ref:q} "
        "{params.features} --scales {params.scales} --patience 0 {params.size} {params.protocol} "
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
    log:
        log("reconstruction_pairs", "exp"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("reconstruct")
    resources:
        **res("reconstruct"),
    params:
        py=PYTHON,
        pairs=config["evaluation"]["pairs"],
    shell:
        "{params.py:q} -m unite reconstruct --ckpt {input.ckpt:q} --split val --limit {params.pairs} "
        "--out {output.npz:q} --grid {output.png:q} > {log} 2>&1"
