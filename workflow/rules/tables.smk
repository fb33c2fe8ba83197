# The paper's Tables 1-6 beside ours: Markdown, CSV and LaTeX under RESULTS/tables/.


rule tables:
    """The tables once every experiment's metrics exist."""
    input:
        all_metrics(),
    output:
        [
            report(
                f,
                caption="../report/tables.rst",
                category="Tables",
                labels={"table": Path(f).stem, "format": Path(f).suffix[1:]},
            )
            for f in table_files()
        ],
    log:
        f"{RESULTS}/logs/tables.log",
    conda:
        "../envs/unite.yaml"
    threads: threads_for("tables")
    resources:
        **res("tables"),
    params:
        py=PYTHON,
        roles=role_args(),
        out=lambda wc, output: Path(output[0]).parent,
        results=lambda wc, output: Path(output[0]).parent.parent,
        primary=PRIMARY,
    shell:
        "{params.py:q} -m unite tables --results {params.results:q} --out {params.out:q} "
        "--primary {params.primary} {params.roles} > {log} 2>&1"


# One experiment's refresh (its target, e.g. `snakemake unite_b_separate`): the same tables
# from whatever metric files exist, plus the rows this experiment fills. It waits only for
# this experiment's metrics, so other experiments read "not run" until they are run.
rule experiment_tables:
    """Refresh the tables from one experiment's metrics and write its rows."""
    input:
        lambda wc: experiment_metrics(wc.exp),
    output:
        experiment_rows("{exp}"),
    log:
        log("experiment_tables", "exp"),
    conda:
        "../envs/unite.yaml"
    threads: threads_for("tables")
    resources:
        **res("tables"),
    params:
        py=PYTHON,
        roles=role_args(),
        out=lambda wc, output: Path(output[0]).parent.parent,
        results=lambda wc, output: Path(output[0]).parent.parent.parent,
        primary=PRIMARY,
    shell:
        "{params.py:q} -m unite tables --results {params.results:q} --out {params.out:q} "
        "--primary {params.primary} {params.roles} --experiment {wildcards.exp} "
        "--rows {output:q} > {log} 2>&1"
