# Joint single-stage training. The run folder is training's own (not a Snakemake output):
# a job re-submitted after a time limit or preemption finds RUN/checkpoints/last.pt and
# resumes. The finished checkpoint is then linked to the rule's output.


rule train:
    input:
        data=lambda wc: data_input(EXPERIMENTS[wc.exp]["dataset"]),
        config=lambda wc: library_files(wc.exp),
        vgg=vgg_input(),
    output:
        ckpt=ckpt_path("{exp}", "trained"),
        metrics=train_metrics("{exp}"),
    log:
        log("train", "exp"),
    benchmark:
        bench("train", "exp")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("train")
    resources:
        **res("train"),
    params:
        run=lambda wc: run_dir(wc.exp),
        args=lambda wc: experiment_args(wc.exp),
        launch=lambda wc, resources: launcher(resources),
        env=torch_home_prefix(),
    shell:
        "{params.env}{params.launch} train {params.args} --out {params.run:q} > {log} 2>&1 && "
        "ln -f {params.run:q}/checkpoints/last.pt {output.ckpt:q} && "
        "cp {params.run:q}/metrics.jsonl {output.metrics:q}"
