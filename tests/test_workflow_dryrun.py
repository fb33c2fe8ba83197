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
from unite import kinds
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


def field(block: str, key: str) -> str:
    m = re.search(rf"^\s+{key}: (.*)$", block, re.M)
    return m.group(1) if m else ""


def planned_blocks(output: str) -> list[dict]:
    """Each planned job of a `snakemake -n -p` listing: rule, inputs, wildcards, shell command."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\n]*\]\nrule |rule )", output):
        m = re.search(r"^(?:\[[^\n]*\]\n)?(?:local)?rule (\S+):", block, re.M)
        if not m:
            continue
        wc = field(block, "wildcards")
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        jobs.append({
            "rule": m.group(1),
            "input": [f for f in field(block, "input").split(", ") if f],
            "wildcards": dict(p.split("=", 1) for p in wc.split(", ")) if wc else {},
            "shell": shell.group(1) if shell else "",
        })
    return jobs


def dry_run_output(*args: str) -> str:
    run = snakemake(["-n", *args], cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    return run.stdout


def dry_run(*args: str) -> dict[str, list[dict]]:
    return planned_jobs(dry_run_output(*args))


def check_chain(jobs: dict, cfg: dict) -> None:
    defaults = cfg.get("experiment_defaults", {})
    primary = cfg["sampling"]["primary"]
    for name, spec in cfg["experiments"].items():
        spec = {**defaults, **spec}
        kind = unite_config.load(REPO / spec["config"]).data.kind
        finetuned = spec.get("finetune", True) and kinds.is_images(kind)
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


@pytest.fixture(scope="module")
def paper_plan() -> str:
    return dry_run_output("-p", "--configfile", "config/paper.yaml")


@pytest.mark.timeout(600)
def test_paper_config_plans_every_experiment(paper_plan):
    cfg = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    jobs = planned_jobs(paper_plan)
    check_chain(jobs, cfg)
    names = set(cfg["experiments"])
    # ImageNet B/L/XL, the Table 6 / Sec. 4 ablations, QM9 and MP20 with UNITE-S
    for required in ("unite-b", "unite-l", "unite-xl", "unite-b-120ep", "unite-b-separate",
                     "unite-b-nostopgrad", "unite-b-noise0.0", "unite-b-noise-none",
                     "unite-b-noise-gaussian0.7", "unite-b-shift-none", "unite-b-shift0.75",
                     "unite-s-qm9", "unite-s-mp20"):
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


@pytest.mark.timeout(600)
def test_paper_config_samples_50k_at_the_sweeps_best_w_for_tables_1_and_4(paper_plan):
    """The sweep (10K samples per scale) picks w; every 50K set of UNITE-B/L/XL is drawn at
    that w, read from the sweep's result when the sampling job runs."""
    blocks = planned_blocks(paper_plan)
    tables_job = next(b for b in blocks if b["rule"] == "tables")
    for exp in ("unite-b", "unite-l", "unite-xl"):
        sweep = f"results/samples/{exp}/cfg_sweep.json"
        (sweep_job,) = [b for b in blocks if b["rule"] == "cfg_sweep"
                        and b["wildcards"].get("exp") == exp]
        assert "--num-samples 10000" in sweep_job["shell"]
        assert "--scales 1.0 1.2 1.4" in sweep_job["shell"] and " 4.0 " in sweep_job["shell"]
        shards = [b for b in blocks if b["rule"] == "sample_shard"
                  and b["wildcards"].get("exp") == exp]
        assert len(shards) == 8 * (3 if exp == "unite-b" else 1)
        for job in shards:
            assert sweep in job["input"]
            assert f"--cfg-from {sweep}" in job["shell"] and "--cfg " not in job["shell"]
            if job["wildcards"]["protocol"] == "dopri5-random":
                assert "--num-samples 50000 --random-labels" in job["shell"]
            else:  # 50 per class x 1000 classes, class-balanced
                assert "--per-class 50 " in job["shell"]
        protocols = ["dopri5-balanced"] + (["heun-balanced", "dopri5-random"]
                                           if exp == "unite-b" else [])
        for p in protocols:  # Table 1 (primary) and Table 4 read these metric files
            assert f"results/metrics/{exp}/gen_{p}.json" in tables_job["input"]
    # the molecule/crystal experiments have no guidance to sweep
    assert not [b for b in blocks if b["rule"] == "cfg_sweep"
                and b["wildcards"].get("exp", "").startswith("unite-s")]


@pytest.mark.timeout(600)
def test_paper_config_default_rows_resolve_to_one_120_epoch_run(paper_plan):
    """Table 2's UNITE-B row and Table 6's default rows read one experiment, and every Table 6
    ablation trains as long as it."""
    from unite import config, tables

    cfg = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    blocks = planned_blocks(paper_plan)
    roles = dict(re.findall(r"--role (\S+)=(\S+)",
                            next(b for b in blocks if b["rule"] == "tables")["shell"]))
    t2 = {r["row"]: r["role"] for r in tables.PAPER["table2_reconstruction"]["rows"] if "role" in r}
    t6 = [r for r in tables.PAPER["table6_ablations"]["rows"]]
    defaults = [r["role"] for r in t6 if "(default)" in r["row"] or "(UNITE" in r["row"]]
    used = {roles[r] for r in defaults + [t2["UNITE-B"]]}
    assert used == {"unite-b-120ep"}
    assert [b["wildcards"]["exp"] for b in blocks
            if b["rule"] == "train" and b["wildcards"].get("exp") == "unite-b-120ep"] == ["unite-b-120ep"]
    assert "unite-b-noise0.7" not in cfg["experiments"]
    steps = {roles[r["role"]]: config.load(REPO / cfg["experiments"][roles[r["role"]]]["config"]).train.steps
             for r in t6 if r["role"] in roles}
    assert set(steps.values()) == {150137}, steps
