"""Resume machinery shared by ``unite train`` and ``unite finetune``: what makes a killed run
continue exactly where an uninterrupted one would have been.

* **Data order.** :class:`ResumableBatchSampler` (via :func:`make_loader`) yields an infinite
  stream of micro-batches whose order is a pure function of seed, epoch and the number of
  micro-batches consumed, so a resumed loader replays what the uninterrupted run would have
  seen next.
* **Random streams.** :func:`seed_everything` / :func:`training_seed` seed the model init and
  the per-rank training noise; :func:`rng_state` is captured (per rank) with every checkpoint
  and :func:`restore_rng` puts it back. Exactness assumes ``data.num_workers: 0`` for datasets
  with random augmentation (worker RNGs are re-seeded on resume; the data *order* is exact
  either way).
* **Resumability check.** :func:`check_resumable` refuses a config that differs from the
  checkpoint's except for the keys of ``config.RESUMABLE_CHANGES``; :func:`truncate_metrics`
  drops metric lines past the checkpoint's step.
* **Preemption.** :class:`StopFlag` is the SIGTERM/SIGUSR1 handler: it only records the
  signal, and the loop saves ``last.pt`` at the next step boundary and exits with
  ``128 + signal``.
"""

from __future__ import annotations

import json
import random
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from unite import config as config_mod
from unite.atomic import atomic_write
from unite.config import RESUMABLE_CHANGES, Config
from unite.errors import UserError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


# --------------------------------------------------------------------------------------------
# data: an infinite, resumable stream of micro-batches
# --------------------------------------------------------------------------------------------
class ResumableBatchSampler(Sampler):
    """Infinite micro-batches over epochs; the order is a function of (seed, epoch, position).

    Each epoch is a ``DistributedSampler`` permutation (``set_epoch(epoch)``, incomplete tail
    dropped), so resuming after ``start`` micro-batches replays exactly what an uninterrupted
    run would have seen next.
    """

    def __init__(self, dataset: Dataset, micro_batch: int, env, seed: int, start: int = 0):
        self.sampler = DistributedSampler(
            dataset, num_replicas=env.world, rank=env.rank, shuffle=True, seed=seed, drop_last=True
        )
        self.micro = micro_batch
        self.per_epoch = len(self.sampler) // micro_batch
        if self.per_epoch == 0:
            raise UserError(
                f"the training set has {len(dataset)} examples, fewer than one micro-batch "
                f"({micro_batch} per rank x {env.world} ranks); lower train.batch_size"
            )
        self.start = start

    def __iter__(self):
        pos = self.start
        while True:
            epoch, offset = divmod(pos, self.per_epoch)
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)
            for b in range(offset, self.per_epoch):
                yield order[b * self.micro : (b + 1) * self.micro]
            pos = (epoch + 1) * self.per_epoch


def micro_batch_size(cfg: Config, world: int) -> int:
    t = cfg.train
    if t.batch_size % (world * t.grad_accum):
        raise UserError(
            f"train.batch_size={t.batch_size} (global) must be divisible by "
            f"ranks x grad_accum = {world} x {t.grad_accum}"
        )
    return t.batch_size // (world * t.grad_accum)


def make_loader(dataset: Dataset, cfg: Config, env, start: int) -> DataLoader:
    sampler = ResumableBatchSampler(
        dataset, micro_batch_size(cfg, env.world), env, cfg.train.seed, start
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        pin_memory=env.device.type == "cuda",
        collate_fn=getattr(dataset, "collate_fn", None),
        # own generator: creating the iterator must not consume the global RNG (exact resume)
        generator=torch.Generator().manual_seed(cfg.train.seed),
        persistent_workers=cfg.data.num_workers > 0,
    )



# --------------------------------------------------------------------------------------------
# RNG state, resumability, metrics, stop flag
# --------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def training_seed(seed: int, rank: int) -> int:
    """A per-rank stream for training noise, distinct from the model-init stream."""
    return int(np.random.SeedSequence([seed, rank, 1]).generate_state(1)[0])


def rng_state(device: torch.device) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def restore_rng(states: list, env, device: torch.device) -> None:
    """This rank's RNG state from a checkpoint that saved one per rank; with another world
    size the streams restart, which is said once (the resume is then not exact)."""
    if len(states) == env.world:
        set_rng_state(states[env.rank], device)
    elif env.is_main:
        print(f"warning: checkpoint has {len(states)} RNG states for {env.world} ranks; "
              "random streams restart (not an exact resume)", file=sys.stderr)


def check_resumable(saved: dict, cfg: Config, path: Path,
                    allowed: tuple[str, ...] = RESUMABLE_CHANGES) -> None:
    """Refuse to resume under a config that differs from the saved one, except for the keys
    (or key prefixes) in ``allowed``. A saved config from before a key existed reads with the
    value it was trained with (``config.upgrade_saved``)."""
    old = config_mod.flatten(config_mod.upgrade_saved(saved))
    new = config_mod.flatten(config_mod.to_dict(cfg))
    changed = sorted(
        k for k in set(old) | set(new)
        if old.get(k) != new.get(k) and not any(k.startswith(p) for p in allowed)
    )
    if changed:
        detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise UserError(
            f"{path} was written with a different config ({detail}); use a new --out folder "
            "or the checkpoint's config"
        )


def truncate_metrics(path: Path, step: int) -> None:
    """Keep metric lines with ``step <= step`` (the resumed checkpoint); drop the rest."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a half-written last line of a killed run
    with atomic_write(path, "w") as fh:
        fh.write("".join(f"{line}\n" for line in kept))


class StopFlag:
    """Signal handler that only records the signal; the loop acts at the next step boundary."""

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict = {}

    def __call__(self, signum, frame):
        self.signum = signum

    def install(self) -> StopFlag:
        for s in STOP_SIGNALS:
            try:
                self.previous[s] = signal.signal(s, self)
            except ValueError:  # not the main thread (e.g. some test runners): no handler
                pass
        return self

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)
        self.previous = {}
