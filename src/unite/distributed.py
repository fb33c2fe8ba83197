"""Multi-process (torchrun) plumbing, kept out of the training loop.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them everything runs as rank 0 of 1.
Backends: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from unite.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device: str = "auto") -> DistEnv:
    """Pick the device and, under torchrun, join the process group."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda requested but no CUDA device is available")
        dev = torch.device("cuda", local_rank if device == "cuda" else torch.device(device).index)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, world, local_rank, dev)


def teardown(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def any_flag(env: DistEnv, flag: bool) -> bool:
    """True on every rank if any rank has the flag set (signals may reach ranks at different steps)."""
    if not env.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(env: DistEnv, values: dict[str, float]) -> dict[str, float]:
    if not env.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], device=env.device, dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / env.world for k, v in zip(keys, t.tolist())}


def gather_objects(env: DistEnv, obj) -> list:
    """Every rank's ``obj`` (list indexed by rank)."""
    if not env.enabled:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out
