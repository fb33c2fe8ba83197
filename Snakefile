# UNITE reproduction: from raw data to the paper's tables (README, "Workflow").
# A --configfile on the command line is a complete workflow config (config/paper.yaml);
# without one, the embedded default runs. Overlays: --configfile config/config.yaml extra.yaml


from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common/config.smk"
include: "workflow/rules/common/paths.smk"
include: "workflow/rules/common/args.smk"
include: "workflow/rules/common/outputs.smk"
include: "workflow/rules/common/inputs.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/targets.smk"


report: "workflow/report/workflow.rst"


rule all:
    """The whole reproduction: every experiment, the tables and the figures."""
    default_target: True
    input:
        table_files(),
        figure_files(),
