# Sampling scattered over jobs (one GPU each), then gathered into one file per protocol.
# Experiments with `cfg_sweep: true` sample every protocol at the sweep's best w: the job
# reads it from the sweep result (`--cfg-from`), since it is unknown when the DAG is built.


rule sample_shard:
    input:
        unpack(guidance_input),
        ckpt=lambda wc: model_checkpoint(wc.exp),
    output:
        temp(
            f"{RESULTS}/samples/{{exp}}/{{protocol}}/shard{{shard}}-of-{{nshards}}.npz"
        ),
    log:
        log("sample_shard", "exp", "protocol", "shard", "nshards"),
    benchmark:
        bench("sample_shard", "exp", "protocol", "shard", "nshards")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("sample")
    resources:
        **res("sample"),
    params:
        py=PYTHON,
        size=lambda wc: sample_size_args(wc.exp, wc.protocol),
        protocol=lambda wc: guidance_args(wc.exp, wc.protocol),
        latents=latents_args,
    shell:
        "{params.py:q} -m unite sample --ckpt {input.ckpt:q} --out {output:q} {params.size} "
        "{params.protocol} --shard {wildcards.shard} --num-shards {wildcards.nshards} "
        "{params.latents} > {log} 2>&1"


rule gather:
    input:
        shard_files,
    output:
        samples("{exp}", "{protocol}"),
    log:
        log("gather", "exp", "protocol"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("gather")
    resources:
        **res("gather"),
    params:
        py=PYTHON,
    shell:
        "{params.py:q} -m unite gather --inputs {input:q} --out {output:q} > {log} 2>&1"


rule sample_grid:
    input:
        unpack(guidance_input),
        ckpt=lambda wc: model_checkpoint(wc.exp),
    output:
        npz=temp(f"{RESULTS}/figures/{{exp}}/samples.npz"),
        png=report(
            f"{RESULTS}/figures/{{exp}}/samples.png",
            caption="../report/samples.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "samples"},
        ),
    log:
        log("sample_grid", "exp"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("sample")
    resources:
        **res("sample"),
    params:
        py=PYTHON,
        per_class=config["evaluation"]["grid_per_class"],
        protocol=lambda wc: guidance_args(wc.exp, PRIMARY),
    shell:
        "{params.py:q} -m unite sample --ckpt {input.ckpt:q} --out {output.npz:q} "
        "--per-class {params.per_class} {params.protocol} --grid {output.png:q} > {log} 2>&1"


rule structure_grid:
    input:
        samples("{exp}", PRIMARY),
    output:
        report(
            f"{RESULTS}/figures/{{exp}}/structures.png",
            caption="../report/structures.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "generated structures"},
        ),
    log:
        log("structure_grid", "exp"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("figures")
    resources:
        **res("figures"),
    params:
        py=PYTHON,
        what=lambda wc: modality(wc.exp),
        drawn=config["evaluation"]["structures"],
        validity=validity_args,
    shell:
        "{params.py:q} -m unite draw {params.what} --samples {input:q} --out {output:q} "
        "--count {params.drawn} {params.validity} > {log} 2>&1"
