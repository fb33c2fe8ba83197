# One target per pipeline stage, for running part of the pipeline (`snakemake stage_train`)
# and for the DVC stages (dvc.yaml), which each run one of them.


for _stage, _files in stage_files().items():

    rule:
        name:
            f"stage_{_stage}"
        input:
            _files,
