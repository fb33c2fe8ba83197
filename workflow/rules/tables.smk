# The paper's Tables 1-6 beside ours, the guidance sweep and the provenance of every metric
# file: Markdown, CSV, LaTeX and HTML (shown in the report) under RESULTS/tables/. The rule's
# inputs are every metric file, so a changed number reruns it.


rule tables:
    """The tables once every experiment's metrics exist."""
    input:
        all_metrics(),
    output:
        # the HTML versions are shown in the report; md/csv/tex are for papers and diffs
        [
            (
                report(
                    f,
                    caption=(
                        "../report/provenance.rst"
                        if Path(f).stem == "provenance"
                        else "../report/tables.rst"
                    ),
                    category="Tables",
                    labels={"table": Path(f).stem},
                )
                if f.endswith(".html")
                else f
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
