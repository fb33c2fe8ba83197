"""Training throughput: samples/s of the full joint step (both GE passes, decoder, backward,
clipping, Muon+AdamW, EMA) and the counted training FLOPs per sample.

    python bench/train_step.py [--threads N] [--steps N] [--warmup N]

* CPU: the embedded digits config (config/experiments/digits.yaml) at its batch size, with
  AdamW (as shipped) and with the paper's Muon + AdamW split; their ratio in the same run.
* GPU (only when CUDA is present): UNITE-B at 256x256, batch 32, bf16 autocast, gradient
  checkpointing, F = 14, LPIPS with a random VGG backbone (same FLOPs as the pretrained one).
* Always: the analytic training FLOPs per sample of UNITE-B with F = 14 (``unite info``)
  beside the paper's ~3.5 TFLOPs.

Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from unite import config
from unite.info import describe
from unite.models import build_model
from unite.optim import EMA, build_optimizers
from unite.training import JointObjective, autocast_for

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "config" / "experiments"
PAPER_TFLOPS_B = 3.5


def time_steps(cfg, device: torch.device, batch: int, warmup: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    objective = JointObjective(model, cfg).to(device).train()
    optimizers = build_optimizers(model, cfg)
    ema = EMA(model, cfg.train.ema_decay)
    autocast = autocast_for(cfg, device)
    s = cfg.data.image_size
    x = torch.rand(batch, 3, s, s, device=device) * 2 - 1
    y = torch.randint(0, cfg.data.num_classes, (batch,), device=device)
    params = list(model.parameters())

    def step():
        with autocast():
            loss, _ = objective(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        ema.update(model)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    elapsed = time.perf_counter() - start
    flops = describe(cfg)["train_flops_per_sample"]
    out = {
        "experiment": cfg.name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "batch": batch,
        "flow_steps_per_recon": cfg.train.flow_steps_per_recon,
        "muon": cfg.train.muon,
        "precision": "bf16" if device.type == "cuda" else "fp32",
        "timed_steps": steps,
        "s_per_step": elapsed / steps,
        "samples_per_s": batch * steps / elapsed,
        "counted_train_flops_per_sample": flops,
        "achieved_tflops": flops * batch * steps / elapsed / 1e12,
    }
    if device.type == "cuda":
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gpu-batch", type=int, default=32)
    parser.add_argument("--set", action="append", default=[], help="override the digits config")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    # the digits config as shipped (AdamW), then the same with the paper's Muon + AdamW split
    cpu = {}
    for optimizer, extra in (("adamw", []), ("muon+adamw", ["train.muon=true"])):
        digits = config.load(EXPERIMENTS / "digits.yaml", [*args.set, *extra])
        cpu[optimizer] = time_steps(digits, torch.device("cpu"), digits.train.batch_size,
                                    args.warmup, args.steps)
        print(json.dumps({"bench": "train_step_cpu", "optimizer": optimizer, **cpu[optimizer]}),
              flush=True)
    print(json.dumps({"bench": "cpu_muon_slowdown",
                      "ratio_s_per_step": cpu["muon+adamw"]["s_per_step"]
                      / cpu["adamw"]["s_per_step"]}), flush=True)

    if torch.cuda.is_available():
        b = config.load(EXPERIMENTS / "unite-b.yaml",
                        ["train.lpips_pretrained=false", "model.grad_checkpointing=true"])
        print(json.dumps({"bench": "train_step_gpu_unite_b",
                          **time_steps(b, torch.device("cuda"), args.gpu_batch, 3, args.steps)}),
              flush=True)
    else:
        print(json.dumps({"bench": "train_step_gpu_unite_b", "measured": False,
                          "reason": "no CUDA device in this environment"}), flush=True)

    info = describe(config.load(EXPERIMENTS / "unite-b.yaml", ["train.flow_steps_per_recon=14"]))
    tf = info["train_flops_per_sample"] / 1e12
    recompute = info.get("recompute_flops_per_sample", 0) / 1e12
    print(json.dumps({
        "bench": "counted_flops_unite_b",
        "flow_steps_per_recon": 14,
        "train_tflops_per_sample": round(tf, 3),
        "with_checkpoint_recompute_tflops": round(tf + recompute, 3),
        "paper_tflops_per_sample": PAPER_TFLOPS_B,
        "breakdown": info["breakdown"],
    }), flush=True)


if __name__ == "__main__":
    main()
