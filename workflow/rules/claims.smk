# The paper's claims over seeds (config/claims.yaml): the verdict table and figure. The
# experiments themselves are ordinary ones, expanded from `claims:` in common/config.smk; this
# rule reads the metric files and training logs the claims name (unite.claims.plan.Plan.inputs).


if CLAIMS is not None:

    rule claims:
        input:
            [
                train_metrics(exp) if what == "train_metrics" else metric(exp, what)
                for exp, what in CLAIMS.inputs()
            ],
        output:
            tables=[f"{RESULTS}/tables/claims.{fmt}" for fmt in ("md", "csv", "tex")],
            figure=f"{RESULTS}/figures/claims.png",
        log:
            f"{RESULTS}/logs/claims.log",
        conda:
            "../envs/unite.yaml"
        threads: threads_for("claims")
        resources:
            **res("claims"),
        params:
            py=PYTHON,
            configs=" ".join(shlex.quote(str(f)) for f in workflow.configfiles),
            tables=lambda wc, output: Path(output.tables[0]).parent,
            results=lambda wc, output: Path(output.tables[0]).parent.parent,
        shell:
            "{params.py:q} -m unite claims --workflow-config {params.configs} "
            "--results {params.results:q} --tables {params.tables:q} "
            "--figure {output.figure:q} > {log} 2>&1"
