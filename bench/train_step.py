"""Training-step throughput: seconds per step of the full joint step, split into forward,
backward and optimizer (clipping, optimizer step(s), EMA), with peak memory; on CUDA also the
achieved TFLOP/s and MFU against the device's peak.

    python bench/train_step.py                      # the default rows, this checkout
    python bench/train_step.py --rows unite-b-cpu --threads 2 --steps 5 --warmup 1
    python bench/train_step.py --compare main .     # old vs new, alternating, one run
    python bench/train_step.py --rows unite-b-cpu --threads 1 --profile 25   # per-op table

Rows (``--rows``, comma-separated):

* ``small``: the embedded digits config as shipped (what ``make demo`` trains).
* ``small-muon``: the same with the paper's Muon + AdamW split.
* ``unite-b-cpu``: UNITE-B, 256 px, batch 1, F = 3, LPIPS with a random VGG, AdamW only,
  fp32: the configuration timed against the authors' released loop (docs/benchmarks.md).
* ``unite-b-gpu``: UNITE-B as configured (F = 14, bf16 autocast, checkpointing policy from
  the config) at ``--gpu-batch``; add ``--compile`` for ``train.compile=true``. CUDA only.

Every row runs in its own subprocess (so peak RSS is per row). ``--compare REV_A REV_B``
checks both git revisions out into temporary worktrees (``.`` = this working tree, uncommitted
changes included), runs the row under each, alternating A B / B A for ``--rounds`` rounds on
the same machine, and prints the ratio of the median step times. The worker only uses APIs
that every revision has (``build_model``, ``JointObjective``, ``build_optimizers``, ``EMA``;
the loop's own ``optimizer_step`` where it exists), so old revisions can be timed with this
script. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]

# (config file, overrides); batch = the config's train.batch_size after overrides
ROWS = {
    "small": ("digits.yaml", []),
    "small-muon": ("digits.yaml", ["train.muon=true"]),
    "unite-b-cpu": ("unite-b.yaml", [
        "train.lpips_pretrained=false", "train.flow_steps_per_recon=3", "train.muon=false",
        "train.batch_size=1", "train.precision=fp32",
    ]),
    "unite-b-gpu": ("unite-b.yaml", ["train.lpips_pretrained=false"]),
}
DEFAULT_ROWS = "small,small-muon,unite-b-cpu"

# dense bf16 tensor-core peaks (vendor spec sheets, TFLOP/s) by a substring of the device name
PEAK_BF16_TFLOPS = {
    "H200": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.4,
    "GH200": 989.4, "B200": 2250.0, "A100": 312.0, "L40S": 362.05, "L4": 121.0,
    "A10G": 70.0, "RTX 4090": 165.2, "RTX 6000 Ada": 364.2,
}


# ------------------------------------------------------------------------------------------
# worker: times one row with whatever ``unite`` is on PYTHONPATH
# ------------------------------------------------------------------------------------------
def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def step_summary(steps: list[dict]) -> dict:
    """One process's timed steps (``forward``/``backward``/``optimizer``/``total``/``cpu``
    seconds each) -> medians, the step times and the process's peak RSS."""
    total = [st["total"] for st in steps]
    return {
        "step_times": [round(v, 4) for v in total],
        "s_per_step": statistics.median(total),
        "mean_s_per_step": statistics.fmean(total),
        **{f"{k}_s": statistics.median(st[k] for st in steps)
           for k in ("forward", "backward", "optimizer")},
        "cpu_s_per_step": statistics.median(st["cpu"] for st in steps),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def pooled_summary(runs: list[dict]) -> dict:
    """Several processes' results of one code -> the median over all their steps (the
    phases: the median of the per-process medians) and the largest peak RSS."""
    times = [t for r in runs for t in r["step_times"]]
    return {
        "s_per_step": statistics.median(times),
        **{k: statistics.median(r[k] for r in runs)
           for k in ("forward_s", "backward_s", "optimizer_s", "cpu_s_per_step")},
        "peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
        "steps": len(times),
    }


def worker(args) -> dict:
    import torch

    import unite
    from unite import config
    from unite.models import build_model
    from unite.optim import EMA, build_optimizers
    try:  # the objective and the precision policy in their own modules
        from unite.acceleration import autocast_for
        from unite.objective import JointObjective
    except ImportError:  # older revisions: both in the training module
        from unite.training import JointObjective, autocast_for

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.row.endswith("-gpu") else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return {"row": args.row, "measured": False, "reason": "no CUDA device"}
    src_root = Path(unite.__file__).resolve().parents[2]
    file, overrides = ROWS[args.row]
    extra = list(args.set)
    if args.row == "unite-b-gpu":
        extra.append(f"train.batch_size={args.gpu_batch}")
        if args.compile:
            extra.append("train.compile=true")
    cfg = config.load(src_root / "config" / "experiments" / file, overrides + extra)
    try:  # newer revisions: TF32, compile switch
        from unite import acceleration
    except ImportError:
        acceleration = None
    if acceleration is not None:
        acceleration.configure(cfg, device)
    try:  # the one step the training loop and fine-tuning call: the bench times the real one
        from unite.optim import optimizer_step
    except ImportError:  # older revisions: the loop's inline step
        def optimizer_step(optimizers, params, grad_clip):
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
            for opt in optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)

    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    ema = EMA(model, cfg.train.ema_decay)
    if acceleration is not None:
        acceleration.compile_model(cfg, model)
    objective = JointObjective(model, cfg).to(device).train()
    optimizers = build_optimizers(model, cfg)
    autocast = autocast_for(cfg, device)
    batch = cfg.train.batch_size
    s = cfg.data.image_size
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(batch, 3, s, s, generator=gen) * 2 - 1).to(device)
    y = torch.randint(0, cfg.data.num_classes, (batch,), generator=gen).to(device)
    params = [p for p in model.parameters() if p.requires_grad]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    steps = []
    for i in range(args.warmup + args.steps):
        c0, t0 = time.process_time(), time.perf_counter()
        with autocast():
            loss, _ = objective(x, y)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        optimizer_step(optimizers, params, cfg.train.grad_clip)
        ema.update(model)
        sync()
        t3 = time.perf_counter()
        if i >= args.warmup:
            steps.append({"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2,
                          "total": t3 - t0, "cpu": time.process_time() - c0})
    profile = []
    if args.profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            with autocast():
                loss, _ = objective(x, y)
            loss.backward()
            optimizer_step(optimizers, params, cfg.train.grad_clip)
            ema.update(model)
            sync()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        profile = [{"op": e.key, "self_s": round(e.self_cpu_time_total / 1e6, 3), "calls": e.count}
                   for e in events[: args.profile]]
    total = [st["total"] for st in steps]
    out = {
        "row": args.row,
        "experiment": cfg.name,
        "source": str(src_root),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "batch": batch,
        "flow_steps_per_recon": cfg.train.flow_steps_per_recon,
        "grad_checkpointing": cfg.model.grad_checkpointing,
        "muon": cfg.train.muon,
        "precision": "bf16" if cfg.train.precision == "bf16" or (
            cfg.train.precision == "auto" and device.type == "cuda") else "fp32",
        "timed_steps": len(steps),
        **step_summary(steps),
        "samples_per_s": batch / statistics.median(total),
    }
    if profile:
        out["profile_top_ops"] = profile
    if device.type == "cuda":
        from unite.info import describe

        info = describe(cfg)
        model_flops = info["train_flops_per_sample"] * batch
        hw_flops = model_flops + info.get("recompute_flops_per_sample", 0) * batch
        achieved = model_flops / out["s_per_step"] / 1e12
        peak = args.peak_tflops or peak_tflops(out["device"])
        out.update({
            "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30,
            "counted_train_flops_per_sample": info["train_flops_per_sample"],
            "achieved_tflops": achieved,
            "achieved_tflops_with_recompute": hw_flops / out["s_per_step"] / 1e12,
            "peak_bf16_tflops": peak,
            "mfu": achieved / peak if peak else None,
            "compile": bool(getattr(cfg.train, "compile", False)),
        })
    return out


# ------------------------------------------------------------------------------------------
# driver: subprocess per row; revisions side by side
# ------------------------------------------------------------------------------------------
def run_worker(src: Path, row: str, args) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", "--rows", row, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads),
           "--gpu-batch", str(args.gpu_batch)]
    cmd += [f"--set={s}" for s in args.set]
    if args.compile:
        cmd.append("--compile")
    if args.profile:
        cmd += ["--profile", str(args.profile)]
    if args.peak_tflops:
        cmd += ["--peak-tflops", str(args.peak_tflops)]
    env = dict(os.environ, PYTHONPATH=str(src))
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"row": row, "source": str(src), "measured": False,
                "reason": f"worker exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])


def checkout(rev: str, tmp: Path, i: int) -> Path:
    """Source tree of a revision: this working tree for ``.``, else a detached worktree."""
    if rev in (".", "WORKTREE"):
        return ROOT / "src"
    path = tmp / f"rev{i}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), rev],
                   check=True)
    return path / "src"


def compare(args) -> None:
    rev_a, rev_b = args.compare
    row = args.rows.split(",")[0]
    tmp = Path(tempfile.mkdtemp(prefix="unite-bench-"))
    made = []
    try:
        srcs = []
        for i, rev in enumerate((rev_a, rev_b)):
            src = checkout(rev, tmp, i)
            srcs.append(src)
            if src != ROOT / "src":
                made.append(src.parent)
        runs: dict[str, list[dict]] = {"a": [], "b": []}
        for r in range(args.rounds):
            order = ("a", "b") if r % 2 == 0 else ("b", "a")
            for key in order:
                res = run_worker(srcs[0] if key == "a" else srcs[1], row, args)
                res.update({"bench": "compare_run", "round": r, "revision": rev_a if key == "a" else rev_b})
                print(json.dumps(res), flush=True)
                if res.get("measured", True):
                    runs[key].append(res)
        if not runs["a"] or not runs["b"]:
            print(json.dumps({"bench": "compare", "row": row, "measured": False}), flush=True)
            return

        a, b = pooled_summary(runs["a"]), pooled_summary(runs["b"])
        paired = [ra["s_per_step"] / rb["s_per_step"] for ra, rb in zip(runs["a"], runs["b"])]
        print(json.dumps({
            "bench": "compare", "row": row, "threads": args.threads,
            "a": {"revision": rev_a, **a}, "b": {"revision": rev_b, **b},
            "ratio_a_over_b": a["s_per_step"] / b["s_per_step"],
            "round_ratios": [round(v, 3) for v in paired],
            "load_average": os.getloadavg(),
        }), flush=True)
    finally:
        for path in made:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                           check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def counted_flops() -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from unite import config
    from unite.info import describe

    info = describe(config.load(ROOT / "config" / "experiments" / "unite-b.yaml",
                                ["train.flow_steps_per_recon=14"]))
    tf = info["train_flops_per_sample"] / 1e12
    recompute = info.get("recompute_flops_per_sample", 0) / 1e12
    return {"bench": "counted_flops_unite_b", "flow_steps_per_recon": 14,
            "train_tflops_per_sample": round(tf, 3),
            "with_checkpoint_recompute_tflops": round(tf + recompute, 3),
            "paper_tflops_per_sample": 3.5, "breakdown": info["breakdown"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma-separated, from {', '.join(ROWS)}")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (0 = torch default)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--gpu-batch", type=int, default=32)
    parser.add_argument("--compile", action="store_true", help="GPU row: train.compile=true")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="device peak for MFU when the name is not in the table")
    parser.add_argument("--set", action="append", default=[], help="config override for every row")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after timing, profile one more step (torch.profiler) and report "
                        "the N ops with the most self CPU time")
    parser.add_argument("--compare", nargs=2, metavar=("REV_A", "REV_B"),
                        help="time the first row under two git revisions, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="--compare: rounds of A and B")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [r for r in args.rows.split(",") if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    if args.worker:
        args.row = args.rows
        print(json.dumps(worker(args)), flush=True)
        return
    if args.compare:
        compare(args)
        return
    rows = args.rows.split(",")
    if args.rows == DEFAULT_ROWS:
        rows.append("unite-b-gpu")  # reports "no CUDA device" where there is none
    results = {}
    for row in rows:
        results[row] = run_worker(ROOT / "src", row, args)
        print(json.dumps({"bench": "train_step", **results[row]}), flush=True)
    if "small" in results and "small-muon" in results and results["small"].get("s_per_step"):
        print(json.dumps({"bench": "cpu_muon_slowdown", "ratio_s_per_step":
                          results["small-muon"]["s_per_step"] / results["small"]["s_per_step"]}))
    print(json.dumps(counted_flops()), flush=True)


if __name__ == "__main__":
    main()
