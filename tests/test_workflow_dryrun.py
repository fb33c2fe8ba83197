"""`snakemake -n` plans the whole chain, data -> training -> fine-tuning -> sampling shards ->
evaluation -> tables, for the embedded default and for the paper's full reproduction.
GAN decoder fine-tuning is planned for image experiments that ask for it, never for
molecules/crystals (the paper does not fine-tune them)."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import yaml

from unite import config as unite_config
from workflow_helpers import REPO, copy_workflow, default_config, snakemake, write_config

CHAIN = ("train", "finetune", "sample_shard", "gather", "evaluate_samples", "reconstruct",
         "evaluate_recon", "decode_trained", "evaluate_trained_decoder")
FINETUNE_ONLY = ("finetune", "decode_trained", "evaluate_trained_decoder")


def planned_jobs(output: str) -> dict[str, list[dict]]:
    """rule -> wildcards of each planned job, from a dry run's job listing."""
    jobs: dict[str, list[dict]] = defaultdict(list)
    for block in re.split(r"\n(?=\[[^\n]*\]\nrule |rule )", output):
        m = re.search(r"^(?:\[[^\n]*\]\n)?(?:local)?rule (\S+):", block, re.M)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        pairs = dict(p.split("=", 1) for p in wc.group(1).split(", ")) if wc else {}
        jobs[m.group(1)].append(pairs)
    return jobs


def dry_run(*args: str) -> dict[str, list[dict]]:
    run = snakemake(["-n", *args], cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    return planned_jobs(run.stdout)


def check_chain(jobs: dict, cfg: dict) -> None:
    defaults = cfg.get("experiment_defaults", {})
    primary = cfg["sampling"]["primary"]
    for name, spec in cfg["experiments"].items():
        spec = {**defaults, **spec}
        kind = unite_config.load(REPO / spec["config"]).data.kind
        finetuned = spec.get("finetune", True) and kind in ("digits", "imagefolder")
        per_exp = {rule: [w for w in jobs[rule] if w.get("exp") == name] for rule in CHAIN}
        for rule in CHAIN:
            if rule in FINETUNE_ONLY and not finetuned:
                assert not per_exp[rule], f"{name}: {rule} planned without fine-tuning"
            else:
                assert per_exp[rule], f"{name}: no {rule} job planned"
        protocols = set([primary] + spec.get("protocols", []))
        shards = spec.get("shards", 1)
        assert len(per_exp["sample_shard"]) == shards * len(protocols), name
        assert {w["protocol"] for w in per_exp["gather"]} == protocols, name
        stages = {"trained", "finetuned"} if finetuned else {"trained"}
        assert {w["stage"] for w in per_exp["reconstruct"]} == stages, name
        if finetuned:  # Table 1's "before": the primary protocol's latents, trained decoder
            assert [w["protocol"] for w in per_exp["decode_trained"]] == [primary], name
    assert len(jobs["tables"]) == 1


def test_embedded_default_plans_the_whole_chain():
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    jobs = dry_run()
    check_chain(jobs, cfg)
    assert jobs["prepare"] and jobs["loss_curves"] and jobs["sample_grid"]
    assert {w["exp"] for w in jobs["structure_grid"]} == {"qm9", "perov5"}
    assert not jobs["evaluate_samples_adm"]  # the embedded default has no Inception features
    assert [w["exp"] for w in jobs["finetune"]] == ["digits"]  # not qm9 / perov5


@pytest.mark.timeout(600)
def test_paper_config_plans_every_experiment():
    cfg = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    jobs = dry_run("--configfile", "config/paper.yaml")
    check_chain(jobs, cfg)
    names = set(cfg["experiments"])
    # ImageNet B/L/XL, the Table 6 / Sec. 4 ablations, QM9 and MP20 with UNITE-S
    for required in ("unite-b", "unite-l", "unite-xl", "unite-b-120ep", "unite-b-separate",
                     "unite-b-nostopgrad", "unite-b-noise0.0", "unite-b-noise-none",
                     "unite-b-shift-none", "unite-b-shift0.75", "unite-s-qm9", "unite-s-mp20"):
        assert required in names
        assert any(w["exp"] == required for w in jobs["train"])
    # Table 4: three protocols of the same UNITE-B checkpoint
    assert {w["protocol"] for w in jobs["gather"] if w["exp"] == "unite-b"} == {
        "heun-balanced", "dopri5-balanced", "dopri5-random"}
    # weights are fetched on the login node with a checksum
    assert jobs["fetch_inception_weights"] and jobs["fetch_vgg16_weights"]
    # FID under ADM's protocol too (its reference batch fetched the same way), images only
    assert jobs["fetch_adm_reference"]
    adm = {(w["exp"], w["protocol"]) for w in jobs["evaluate_samples_adm"]}
    assert ("unite-b", "dopri5-random") in adm and ("unite-xl", "dopri5-balanced") in adm
    assert not {e for e, _ in adm} & {"unite-s-qm9", "unite-s-mp20"}
    # pictures of the generated molecules and crystals
    assert {w["exp"] for w in jobs["structure_grid"]} == {"unite-s-qm9", "unite-s-mp20"}


def test_fine_tuning_a_molecule_experiment_is_refused(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = default_config()
    cfg["experiments"]["qm9"]["finetune"] = True
    path = write_config(cfg, work / "config" / "qm9-ft.yaml")
    run = snakemake(["-n", "--configfile", str(path)], cwd=work, timeout=300)
    assert run.returncode != 0
    assert "experiments.qm9.finetune" in run.stdout and "only the image decoder" in run.stdout
