# The paper's Sec. 4 analyses (alignment, weight entropy, denoising trajectory) and the
# training curves (Fig. 4 analogue).


rule analyze:
    input:
        lambda wc: model_checkpoint(wc.exp),
    output:
        json=f"{RESULTS}/analysis/{{exp}}/{{analysis}}.json",
        png=report(
            f"{RESULTS}/analysis/{{exp}}/{{analysis}}.png",
            caption="../report/analysis.rst",
            category="Analyses",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "analysis": "{analysis}"},
        ),
    log:
        log("analyze", "exp", "analysis"),
    benchmark:
        bench("analyze", "exp", "analysis")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("analyze")
    resources:
        **res("analyze"),
    params:
        py=PYTHON,
    shell:
        "{params.py:q} -m unite analyze {wildcards.analysis} --ckpt {input:q} --out {output.json:q} "
        "--png {output.png:q} > {log} 2>&1"


rule loss_curves:
    input:
        train_metrics("{exp}"),
    output:
        json=f"{RESULTS}/figures/{{exp}}/loss_curves.json",
        png=report(
            f"{RESULTS}/figures/{{exp}}/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "loss curves"},
        ),
    log:
        log("loss_curves", "exp"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("figures")
    resources:
        **res("figures"),
    params:
        py=PYTHON,
    shell:
        "{params.py:q} -m unite analyze curves --metrics {input:q} --out {output.json:q} "
        "--png {output.png:q} > {log} 2>&1"
