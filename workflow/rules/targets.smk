# Target rules. One per pipeline stage, across every experiment (`snakemake stage_train`),
# which the DVC stages (dvc.yaml) run. One per experiment, named after it
# (`snakemake unite_b_separate`: its chain through evaluation, then the tables refreshed),
# and one per stage of each experiment (`unite_b_separate_train`, `..._sample`, ...);
# `snakemake --list-target-rules` lists them with their descriptions (set after each rule:
# a rule's docstring cannot be an f-string, which Python >= 3.12 tokenizes differently).


for _stage, _files in stage_files().items():

    rule:
        name:
            f"stage_{_stage}"
        input:
            _files,

    workflow.get_rule(f"stage_{_stage}").docstring = f"every experiment: stage {_stage}"


def experiment_target_rules() -> list:
    """unite.targets names them; a clash with another experiment or rule stops the run."""
    try:
        return unite.targets.experiment_targets(
            {e: experiment_stage_files(e) for e in EXPERIMENTS},
            {r.name for r in workflow.rules},
        )
    except UserError as exc:
        raise WorkflowError(f"config key 'experiments': {exc}") from None


for _target in experiment_target_rules():

    rule:
        name:
            _target.rule
        input:
            _target.files,

    workflow.get_rule(_target.rule).docstring = _target.doc
