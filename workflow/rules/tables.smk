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
    params:
        roles=role_args(),
    log:
        f"{RESULTS}/logs/tables.log",
    threads: threads_for("tables")
    resources:
        **res("tables"),
    shell:
        "{PYTHON} -m unite tables --results {RESULTS:q} --out {RESULTS:q}/tables "
        "--primary {PRIMARY} {params.roles} > {log} 2>&1"
