# The paper's Tables 1-6 beside ours: Markdown, CSV and LaTeX under RESULTS/tables/.


rule tables:
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
