"""Wall-time estimate of a claims run (config/claims.yaml) from cheap per-job measurements.

    python bench/claims_estimate.py [--configfile config/claims.yaml ...] [--cores 2]

For every distinct training setting of the plan (a variant without its seed) it times a few
real training steps on one thread (process CPU time, so other users of a shared machine
inflate it less than wall time), and one batch of Heun sampling; then it multiplies out:
steps x seconds per step per run, sampling batches x NFE per protocol, plus a fixed start-up
cost per Snakemake job (Python + torch import, measured here as CPU time, plus
``--scheduler-seconds`` for Snakemake itself). Prints one JSON line per
setting and a total: core-seconds and the wall time on ``--cores`` single-threaded job slots
(an ideal packing, so a lower bound; the longest single job is printed too). Shared one-off
jobs (data preparation, the digits classifier, reference statistics) are estimated with
``--setup-seconds``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from unite import config as config_mod
from unite.claims.plan import load_plan
from unite.data import build_dataset
from unite.models import build_model
from unite.objective import JointObjective
from unite.optim import EMA, build_optimizers
from unite.sampling import generate_with_stats

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(fn, repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def one_batch(cfg, cache: dict):
    """A real training batch of the base's data (atoms need real structures)."""
    key = (cfg.data.kind, cfg.data.root, cfg.train.batch_size)
    if key not in cache:
        from torch.utils.data import DataLoader

        ds = build_dataset(cfg, "train")
        base = getattr(ds, "dataset", ds)
        loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True,
                            collate_fn=getattr(base, "collate_fn", None))
        cache[key] = next(iter(loader))
    return cache[key]


def time_setting(cfg, batches: dict, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build_model(cfg)
    objective = JointObjective(model, cfg).train()
    optimizers = build_optimizers(model, cfg)
    ema = EMA(model, cfg.train.ema_decay)
    x, y = one_batch(cfg, batches)

    def step():
        loss, _ = objective(x, y)
        loss.backward()
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        ema.update(model)

    for _ in range(warmup):
        step()
    per_step = cpu_seconds(step, steps)
    labels = [i % cfg.data.num_classes for i in range(cfg.sample.batch_size)]

    def sample():
        generate_with_stats(model.eval(), cfg, labels, solver="heun", steps=5, cfg_scale=1.0,
                            interval=(0.1, 1.0), seed=0, batch_size=len(labels), progress=False)

    per_batch_5 = cpu_seconds(sample, 2)  # 5 Heun steps = 10 network evaluations
    return {"s_per_step": per_step, "s_per_sample_nfe": per_batch_5 / 10 / len(labels)}


def job_start_seconds() -> float:
    """CPU seconds (user + system) of one job's start: a Python process importing torch and
    unite, as every `python -m unite` job does."""
    cmd = [sys.executable, "-c", "import torch, unite.sampling, unite.training"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="+", default=[str(ROOT / "config/claims.yaml")])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per setting")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--heun-nfe", type=int, default=0,
                        help="NFE per sample of the Heun protocols (0: 2 x steps - 1)")
    parser.add_argument("--dopri5-nfe", type=int, default=150,
                        help="assumed NFE per sample of dopri5 (digits default: 143-155)")
    parser.add_argument("--scheduler-seconds", type=float, default=1.5,
                        help="Snakemake's own CPU per job (DAG update, file checks, logging)")
    parser.add_argument("--setup-seconds", type=float, default=300.0,
                        help="one-off jobs: data preparation, digits classifier, reference stats")
    args = parser.parse_args()
    torch.set_num_threads(1)

    import yaml

    wf = {}
    for f in args.configfile:
        wf = config_mod.deep_update(wf, yaml.safe_load(Path(f).read_text()))
    plan = load_plan(args.configfile)
    protocols = wf["sampling"]["protocols"]
    start = job_start_seconds() + args.scheduler_seconds
    print(json.dumps({"bench": "job_start", "cpu_seconds": round(start, 2)}), flush=True)

    timed: dict[str, dict] = {}
    batches: dict = {}
    total, longest = args.setup_seconds, 0.0
    for name, spec in plan.experiments.items():
        overrides = [s for s in spec["set"] if not s.startswith("train.seed=")]
        cfg = config_mod.load(spec["config"], overrides)
        prepared = ROOT / "results" / "data" / f"{spec['dataset']}.npz"
        if cfg.data.kind != "digits" and prepared.exists():
            cfg.data.root = str(prepared)
        key = json.dumps(config_mod.to_dict(cfg), sort_keys=True)
        if key not in timed:
            timed[key] = time_setting(cfg, batches, args.steps, args.warmup)
        t = timed[key]
        train = cfg.train.steps * t["s_per_step"]
        n_samples = spec.get("num_samples") or (
            (spec.get("per_class") or cfg.sample.per_class) * cfg.data.num_classes)
        gen, jobs = 0.0, 1  # train
        needed = {p for e, w in plan.inputs() if e == name for p in [w] if p.startswith("gen_")}
        for source in needed:
            p = protocols[source[len("gen_"):]]
            nfe = (args.dopri5_nfe if p["solver"] == "dopri5"
                   else args.heun_nfe or 2 * p.get("steps", cfg.sample.steps) - 1)
            gen += n_samples * nfe * t["s_per_sample_nfe"]
            jobs += 3  # sample shard, gather, evaluate
        if any(e == name and w.startswith("recon_") for e, w in plan.inputs()):
            jobs += 2 * (2 if spec["finetune"] else 1)  # reconstruct + evaluate per stage
        if spec["finetune"]:
            jobs += 1
        seconds = train + gen + jobs * start
        total += seconds
        longest = max(longest, seconds)
        print(json.dumps({"bench": "claims_run", "experiment": name,
                          "s_per_step": round(t["s_per_step"], 3), "steps": cfg.train.steps,
                          "train_s": round(train), "sampling_s": round(gen), "jobs": jobs,
                          "total_s": round(seconds)}), flush=True)
    wall = max(total / args.cores, longest)
    print(json.dumps({"bench": "claims_total", "experiments": len(plan.experiments),
                      "core_seconds": round(total), "cores": args.cores,
                      "wall_minutes_ideal": round(wall / 60, 1),
                      "longest_job_minutes": round(longest / 60, 1),
                      "fits_2h": wall <= 7200 and math.isfinite(wall)}), flush=True)


if __name__ == "__main__":
    main()
