# Data: login-node downloads (sha256-checked), dataset preparation, reference statistics.


for _name, _asset in fetched_assets().items():

    rule:
        name:
            f"fetch_{_name}"
        output:
            asset_path(_name),
        log:
            f"{RESULTS}/logs/fetch/{_name}.log",
        localrule: True
        conda:
            "../envs/unite.yaml"
        params:
            py=PYTHON,
            url=_asset["url"],
            sha256=_asset.get("sha256", ""),
        shell:
            "{params.py:q} -m unite fetch --url {params.url:q} --sha256 '{params.sha256}' "
            "--out {output:q} > {log} 2>&1"


rule prepare:
    input:
        lambda wc: raw_data_input(wc.dataset),
    output:
        f"{RESULTS}/data/{{dataset}}.{{suffix}}",
    log:
        log("prepare", "dataset", "suffix"),
    benchmark:
        bench("prepare", "dataset", "suffix")
    wildcard_constraints:
        suffix="npz|json",
    conda:
        "../envs/unite.yaml"
    threads: threads_for("prepare")
    resources:
        **res("prepare"),
    params:
        py=PYTHON,
        config=lambda wc: DATASETS[wc.dataset]["config"],
        set=lambda wc: set_args(DATASETS[wc.dataset].get("set", [])),
        root=lambda wc: raw_root_args(wc.dataset),
        # not on the command line: the values prepare() reads from the library config, so
        # that editing one (data.seed, data.max_atoms, ...) reruns this job (params trigger)
        reads=lambda wc: unite.kinds.prepare_settings(DATA_CFG[wc.dataset].data),
    shell:
        "{params.py:q} -m unite prepare --config {params.config:q} {params.set} {params.root} "
        "--out {output:q} "
        "> {log} 2>&1"


rule digits_classifier:
    input:
        lambda wc: data_input(wc.dataset),
    output:
        classifier("{dataset}"),
    log:
        log("digits_classifier", "dataset"),
    benchmark:
        bench("digits_classifier", "dataset")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("reference")
    resources:
        **res("reference"),
    params:
        py=PYTHON,
        config=lambda wc: DATASETS[wc.dataset]["config"],
        set=lambda wc: set_args(DATASETS[wc.dataset].get("set", [])),
        root=lambda wc: data_root_args(wc.dataset),
    shell:
        "{params.py:q} -m unite evaluate digits-classifier --config {params.config:q} {params.set} "
        "{params.root} --out {output:q} > {log} 2>&1"


rule reference_stats:
    input:
        data=lambda wc: data_input(wc.dataset),
        weights=lambda wc: feature_weights(wc.dataset),
    output:
        reference_stats("{dataset}"),
    log:
        log("reference_stats", "dataset"),
    benchmark:
        bench("reference_stats", "dataset")
    conda:
        "../envs/unite.yaml"
    threads: threads_for("reference")
    resources:
        **res("reference"),
    params:
        py=PYTHON,
        config=lambda wc: DATASETS[wc.dataset]["config"],
        set=lambda wc: set_args(DATASETS[wc.dataset].get("set", [])),
        root=lambda wc: data_root_args(wc.dataset),
        features=lambda wc: feature_args(wc.dataset),
    shell:
        "{params.py:q} -m unite evaluate ref-stats --config {params.config:q} {params.set} "
        "{params.root} {params.features} --out {output:q} > {log} 2>&1"
