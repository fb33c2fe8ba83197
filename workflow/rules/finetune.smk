# GAN decoder fine-tuning (paper App. A): the GE frozen, only the decoder trains, with an
# adversarial loss from a discriminator initialised from the trained GE (src/unite/finetune.py,
# docs/finetune.md). Image experiments only: the paper does not fine-tune the QM9/MP20
# decoders, so those experiments have no fine-tuning job and their tables say "not applicable".
# Like training, the run folder is the command's own (not an output): a re-submitted job
# resumes from its last.pt; SLURM's USR1 before the time limit makes it checkpoint and exit.


rule finetune:
    input:
        ckpt=ckpt_path("{exp}", "trained"),
        data=lambda wc: data_input(EXPERIMENTS[wc.exp]["dataset"]),
        vgg=vgg_input(),
    output:
        ckpt=ckpt_path("{exp}", "finetuned"),
        metrics=finetune_metrics("{exp}"),
        curves=report(
            finetune_curves("{exp}"),
            caption="../report/finetune_curves.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "fine-tuning curves"},
        ),
    log:
        log("finetune", "exp"),
    benchmark:
        bench("finetune", "exp")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("finetune")
    resources:
        **res("finetune"),
    params:
        run=lambda wc: finetune_run_dir(wc.exp),
        args=lambda wc: experiment_args(wc.exp),
        launch=lambda wc, resources: launcher(resources),
        env=torch_home_prefix(),
    shell:
        "{params.env}{params.launch} finetune --ckpt {input.ckpt:q} --out {output.ckpt:q} "
        "--run {params.run:q} --no-progress {params.args} > {log} 2>&1 && "
        "cp {params.run:q}/metrics.jsonl {output.metrics:q} && "
        "cp {params.run:q}/loss_curves.png {output.curves:q}"


# Table 1's gFID before fine-tuning: the primary protocol's samples (drawn from the
# fine-tuned checkpoint with --save-latents) decoded again with the trained decoder. The GE is
# bit-identical in both checkpoints, so these are the same latents; only the decoder differs.
rule decode_trained:
    input:
        samples=samples("{exp}", "{protocol}"),
        ckpt=ckpt_path("{exp}", "trained"),
    output:
        trained_decoder_samples("{exp}", "{protocol}"),
    log:
        log("decode_trained", "exp", "protocol"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("sample")
    resources:
        **res("sample"),
    params:
        py=PYTHON,
    shell:
        "{params.py:q} -m unite decode --samples {input.samples:q} --ckpt {input.ckpt:q} "
        "--out {output:q} > {log} 2>&1"


rule evaluate_trained_decoder:
    input:
        unpack(image_reference),
        samples=trained_decoder_samples("{exp}", "{protocol}"),
    output:
        metric("{exp}", "gen_{protocol}_trained_decoder"),
    log:
        log("evaluate_trained_decoder", "exp", "protocol"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("evaluate")
    resources:
        **res("evaluate"),
    params:
        py=PYTHON,
        command=evaluate_samples_command,
    shell:
        "{params.py:q} -m unite evaluate {params.command} --out {output:q} > {log} 2>&1"
