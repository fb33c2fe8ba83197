"""This library's UNITE-B training step beside the authors' released loop, in one run.

The authors' code (github.com/ShivamDuggal4/UNITE-tokenization-generation, commit 2389f2c)
is not part of this project: clone it yourself and pass its folder. This script only calls
its public classes and functions, at the configuration of ``bench/train_step.py``'s
``unite-b-cpu`` row: UNITE-B, 256 px, batch 1, F = 3 flow draws in one chunk, LPIPS with a
random VGG (no download), AdamW only (theirs: ``fused=True``), fp32, no checkpointing (their
rule: only when F > 4), eager (their ``torch_compile_decoder`` is a CUDA-run setting). The
timed step is the body of their ``engines/train.py`` loop for one micro-batch: zero_grad,
forward, backward, ``clip_grad_norm_`` over all parameters, optimizer and scheduler step,
``update_ema`` and ``copy_bn_buffers``. Their ``autocast("cuda")`` is a no-op on a CPU.

    git clone https://github.com/ShivamDuggal4/UNITE-tokenization-generation authors
    git -C authors checkout 2389f2c
    pip install --target authors-deps --no-deps timm==0.9.16 einops   # their imports
    python bench/authors_step.py --authors authors --deps authors-deps --rounds 4 --steps 5

Each measurement is its own process; the two codes alternate (theirs, ours / ours, theirs,
...). Prints one JSON object per run and a summary with ``ratio_authors_over_ours`` of the
median step times (and per round), in the keys of ``bench/train_step.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from train_step import pooled_summary, step_summary  # bench/ is on sys.path as the script's folder

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
AUTHORS_COMMIT = "2389f2c"
FLOW_DRAWS = 3


def _offline_lpips(lpips_module) -> None:
    """Random VGG and no LPIPS head download, as ``train.lpips_pretrained=false`` here."""
    original_init = lpips_module.VGG16FeatureExtractor.__init__

    def init(self, requires_grad=False, pretrained=True):
        original_init(self, requires_grad=requires_grad, pretrained=False)

    lpips_module.VGG16FeatureExtractor.__init__ = init
    lpips_module.LPIPS._load_pretrained_weights = lambda self, name="vgg_lpips": None


def worker(args) -> dict:
    """Time the authors' step in this process (their folder first on sys.path)."""
    import warnings

    sys.path[:0] = [str(Path(args.authors).resolve())] + ([str(Path(args.deps).resolve())] if args.deps else [])
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from copy import deepcopy

    import modules.autoencoding_utils.lpips as lpips_module
    from omegaconf import OmegaConf

    _offline_lpips(lpips_module)
    from models.unite import UNITE
    from utils.ema import copy_bn_buffers, update_ema
    from utils.optim import build_optimizer, build_scheduler

    cfg = OmegaConf.load(Path(args.authors) / "configs" / "imagenet.yaml")
    model_cfg = OmegaConf.to_container(cfg.gen_tok, resolve=True)
    model_cfg["flow_steps_per_recon"] = FLOW_DRAWS
    train_cfg = OmegaConf.to_container(cfg.training, resolve=True)
    torch.manual_seed(0)
    model = UNITE(model_cfg, num_classes=1000)
    ema = deepcopy(model).eval()
    ema.requires_grad_(False)
    params = model.get_learnable_params()  # every trainable parameter: AdamW only
    optimizer, _ = build_optimizer(params, train_cfg)
    scheduler, _ = build_scheduler(optimizer, 1000, train_cfg)
    if model.gradient_checkpointing_denoiser:
        raise SystemExit("their rule should not checkpoint at F = 3")
    model.train()
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(1, 3, 256, 256, generator=gen)
    labels = torch.randint(0, 1000, (1,), generator=gen)

    def step(times: dict | None = None):
        c0, t0 = time.process_time(), time.perf_counter()
        optimizer.zero_grad()
        loss, _ = model(images, labels=labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["clip_grad"])
        optimizer.step()
        scheduler.step()
        update_ema(ema, model, train_cfg["ema_decay"])
        copy_bn_buffers(model, ema, broadcast_from_rank0=True)
        t3 = time.perf_counter()
        if times is not None:
            times.update(forward=t1 - t0, backward=t2 - t1, optimizer=t3 - t2, total=t3 - t0,
                         cpu=time.process_time() - c0)

    steps = []
    for i in range(args.warmup + args.steps):
        times: dict = {}
        step(times)
        if i >= args.warmup:
            steps.append(times)
    out = {
        "source": f"authors@{AUTHORS_COMMIT}",
        "threads": torch.get_num_threads(),
        "fused_adamw": any(g.get("fused") for g in optimizer.param_groups),
        "trainable_params": sum(p.numel() for p in params),
    }
    out.update(step_summary(steps))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        out["profile_top_ops"] = [
            {"op": e.key, "self_s": round(e.self_cpu_time_total / 1e6, 3), "calls": e.count}
            for e in events[: args.profile]]
    return out


def _run(cmd: list[str], env: dict) -> dict:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"measured": False, "reason": f"exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])


def drive(args) -> None:
    if not (Path(args.authors) / "models" / "unite.py").is_file():
        raise SystemExit(f"--authors {args.authors}: not a checkout of the authors' repository "
                         "(models/unite.py missing); see this script's docstring")
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if args.profile:
        common += ["--profile", str(args.profile)]
    commands = {
        "ours": [sys.executable, str(ROOT / "bench" / "train_step.py"), "--worker", "--rows", "unite-b-cpu", *common],
        "authors": [sys.executable, str(HERE), "--worker", "--authors", args.authors, *common]
        + (["--deps", args.deps] if args.deps else []),
    }
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"),
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    runs: dict[str, list[dict]] = {"ours": [], "authors": []}
    for r in range(args.rounds):
        for who in (("authors", "ours") if r % 2 == 0 else ("ours", "authors")):
            res = _run(commands[who], env)
            res.update(bench="authors_step_run", who=who, round=r, load_average=os.getloadavg())
            print(json.dumps(res), flush=True)
            if res.get("measured", True):
                runs[who].append(res)
    if not runs["ours"] or not runs["authors"]:
        print(json.dumps({"bench": "authors_step", "measured": False}), flush=True)
        return

    theirs, ours = pooled_summary(runs["authors"]), pooled_summary(runs["ours"])
    print(json.dumps({
        "bench": "authors_step", "threads": args.threads, "authors": theirs, "ours": ours,
        "ratio_authors_over_ours": theirs["s_per_step"] / ours["s_per_step"],
        "round_ratios": [round(a["s_per_step"] / o["s_per_step"], 3)
                         for a, o in zip(runs["authors"], runs["ours"])],
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", required=True, help="checkout of the authors' repository")
    parser.add_argument("--deps", default=None, help="folder with their extra imports (timm, einops)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile one step per run and report its N heaviest ops")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
    else:
        drive(args)


if __name__ == "__main__":
    main()
