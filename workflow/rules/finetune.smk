# GAN decoder fine-tuning (paper App. A): frozen GE, decoder trained with an adversarial loss.
# Until the method lands, `unite finetune` passes the checkpoint through and marks it
# `fine_tuned: false`, which the tables print as "not fine-tuned".


rule finetune:
    input:
        ckpt=ckpt_path("{exp}", "trained"),
        data=lambda wc: data_input(EXPERIMENTS[wc.exp]["dataset"]),
        vgg=vgg_input(),
    output:
        ckpt_path("{exp}", "finetuned"),
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
        py=PYTHON,
        args=lambda wc: experiment_args(wc.exp),
        env=torch_home_prefix(),
    shell:
        "{params.env}{params.py:q} -m unite finetune --ckpt {input.ckpt:q} --out {output:q} "
        "{params.args} > {log} 2>&1"
