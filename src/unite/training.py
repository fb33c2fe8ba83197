"""``python -m unite train``: single-stage joint training of GE + decoder (REFERENCE section 2).

One step, per micro-batch (x, y):

1. tokenization pass ``z0 = GE(x)``;
2. reconstruction ``x_hat = D(noisy(z0))`` with ``train.recon_noise`` (gaussian ``z0 + sigma*eps``
   as in the paper; ``interp`` = the authors' code; ``none``), loss L1 + LPIPS;
3. denoising: ``z0_sg = stopgrad(z0)`` (``train.stop_gradient``), F = ``flow_steps_per_recon``
   independent draws (eps, t) with ``z_t = t*z0_sg + (1-t)*eps``, run ``flow_chunk`` draws per
   GE forward (draws concatenated along the batch), class labels dropped to the null class with
   probability ``label_dropout``;
4. ``loss = L_recon + flow_weight * L_flow`` and ONE backward of that total (the whole step is
   a single graph; ``flow_chunk`` bounds the size of each forward, not the maths).

Optimisation (unite.optim): Muon + AdamW, warm-up + cosine counted in optimizer steps,
gradient accumulation (``grad_accum`` micro-batches per optimizer step; ``batch_size`` is the
global batch over ranks and micro-batches), clipping over all parameters, EMA of the whole
model. bf16 autocast on CUDA (``precision: auto``), fp32 on CPU. DDP under torchrun.

Run folder: ``RUN/config.yaml`` (the resolved config of ``last.pt``; written with every
checkpoint), ``RUN/metrics.jsonl`` (one JSON object per line, ``"kind": "train"`` or
``"eval"``), ``RUN/checkpoints/last.pt`` (every ``ckpt_every`` steps and at the end; atomic
writes), ``RUN/.lock`` (held by the one trainer of the folder: a second one is refused). The
folder must be writable at the start. If ``last.pt`` exists the run resumes from it exactly:
model, EMA, optimizers, step, every RNG state (per rank) and the data order (a pure function of
seed, epoch and the number of micro-batches consumed). Metric lines past the checkpoint's step
are dropped on resume. Exactness assumes ``data.num_workers: 0`` for datasets with random
augmentation (worker RNGs are re-seeded on resume; the data *order* is exact either way).

Preemption: SIGTERM and SIGUSR1 only set a flag; at the next step boundary the loop saves
``last.pt`` and the command exits with ``128 + signal`` (143 for SIGTERM, 138 for SIGUSR1).
A non-zero code on purpose: the run is *not* finished, so a workflow manager must not treat
its outputs as complete; rerunning the same command (or a SLURM requeue) resumes. A finished
run exits 0, and rerunning a finished run does nothing. A larger ``train.steps`` extends a
finished run (``RUN/config.yaml`` follows at the next checkpoint); a smaller one than the
checkpoint holds is refused, since the run cannot be shortened in place.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from unite import acceleration, checkpoint, distributed
from unite import config as config_mod
from unite.atomic import (
    ENVIRONMENT_ERRNOS,
    atomic_write,
    check_writable,
    clean_stale_temps,
    environment_error,
)
from unite.config import RESUMABLE_CHANGES, Config
from unite.data import build_dataset
from unite.errors import UserError
from unite.flow import flow_loss, interpolate, sample_time
from unite.losses import ReconLoss
from unite.modality import batch_size_of, is_image, to_device
from unite.models import build_model
from unite.models.checkpointing import plan_for
from unite.optim import EMA, WarmupCosine, build_optimizers, optimizer_step
from unite.runlock import RunLock

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


# --------------------------------------------------------------------------------------------
# the objective: one forward = both passes of one micro-batch
# --------------------------------------------------------------------------------------------
def add_recon_noise(z0: torch.Tensor, cfg: Config) -> torch.Tensor:
    """Noise on z0 before decoding (gradients flow through z0 in every mode)."""
    rn = cfg.train.recon_noise
    if rn.mode == "none":
        return z0
    eps = torch.randn_like(z0)
    if rn.mode == "gaussian":
        return z0 + rn.sigma * eps
    # interp (authors' code): a random `fraction` of the batch gets s*z0 + (1-s)*eps
    b = z0.shape[0]
    chosen = torch.randperm(b, device=z0.device)[: round(rn.fraction * b)]
    mask = torch.zeros(b, device=z0.device, dtype=torch.bool)
    mask[chosen] = True
    s = rn.s_min + (1.0 - rn.s_min) * torch.rand(b, device=z0.device)
    s = s.view(-1, *([1] * (z0.dim() - 1))).to(z0.dtype)
    return torch.where(mask.view_as(s), s * z0 + (1.0 - s) * eps, z0)


def drop_labels(y: torch.Tensor, p: float, null: int) -> torch.Tensor:
    if p <= 0:
        return y
    return torch.where(torch.rand(y.shape[0], device=y.device) < p, torch.full_like(y, null), y)


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """F draws split into forwards of at most ``chunk`` draws: 14, 4 -> [4, 4, 4, 2]."""
    return [min(chunk, total - i) for i in range(0, total, chunk)]


def flow_weight_at(step: int, cfg: Config) -> float:
    """Weight of the flow loss at an optimizer step: 0 before ``train.flow_start``, then a
    linear ramp over ``train.flow_ramp`` steps up to ``train.flow_weight``."""
    t = cfg.train
    if step < t.flow_start:
        return 0.0
    if t.flow_ramp <= 0:
        return t.flow_weight
    return t.flow_weight * min(1.0, (step - t.flow_start + 1) / t.flow_ramp)


class JointObjective(nn.Module):
    """``forward(x, y) -> (total_loss, parts)``: the two passes of REFERENCE section 2.

    A module (not a function) so that DDP can wrap it: DDP only synchronises gradients of
    computations that go through the wrapped module's ``forward``.
    """

    def __init__(self, model: nn.Module, cfg: Config):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.recon_loss = ReconLoss(cfg)
        self.recompute = plan_for(cfg)  # activation checkpointing per pass, chosen by F
        self.step = 0  # optimizer step, set by the training loop (flow-loss schedule)

    def forward(self, x, y):
        t = self.cfg.train
        model = self.model
        z0 = model.encode(x, recompute=self.recompute.tokenize)
        x_hat = model.decode(add_recon_noise(z0, self.cfg))
        recon, parts = self.recon_loss(x_hat, x)

        target = z0.detach() if t.stop_gradient else z0
        b = target.shape[0]
        flow = recon.new_zeros(())
        for n in chunk_sizes(t.flow_steps_per_recon, t.flow_chunk):
            z0_rep = target.repeat(n, *([1] * (target.dim() - 1)))  # draw-major along batch
            eps = torch.randn_like(z0_rep)
            tt = sample_time(n * b, t.time_shift, device=z0_rep.device)
            z_t = interpolate(z0_rep, eps, tt)
            y_rep = drop_labels(y.repeat(n), t.label_dropout, model.num_classes)
            pred = model.denoise(z_t, tt, y_rep, recompute=self.recompute.denoise)
            flow = flow + flow_loss(
                pred, z0_rep, z_t, tt, n, kind=t.flow_loss, clamp=t.velocity_clamp
            )
        weight = flow_weight_at(self.step, self.cfg)
        total = recon + weight * flow
        parts = {
            "loss": total.detach(),
            "recon": recon.detach(),
            **{k: v.to(total.device) for k, v in parts.items()},
            "flow": flow.detach(),
            "flow_weight": recon.new_tensor(weight),
        }
        return total, parts


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
# held-out evaluation (EMA weights)
# --------------------------------------------------------------------------------------------
def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1], measured on the [0, 1] scale (peak 1)."""
    p = (pred.float().clamp(-1, 1) + 1) / 2
    q = (target.float().clamp(-1, 1) + 1) / 2
    mse = (p - q).pow(2).flatten(1).mean(dim=1).clamp(min=1e-10)
    return -10.0 * torch.log10(mse)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, cfg: Config, device, autocast) -> dict:
    """Reconstruct the fixed val subset with ``model`` (the EMA): images -> val_psnr, val_l1;
    atoms -> val_<recon loss terms>; both -> val_latent_std, the spread of z0 across the val
    items (per latent entry, averaged), which falls to ~0 when every input gets the same latent
    (the collapse of docs/digits.md). Runs under a forked, fixed-seed RNG so that evaluating
    never changes the training random stream."""
    devices = [device] if device.type == "cuda" else []
    sums: dict[str, float] = {}
    count = 0
    z_sum = z_sq = None
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.train.seed + 1)
        for x, _ in loader:
            x = to_device(x, device)
            with autocast():
                z0 = model.encode(x)
                x_hat = model.decode(z0)
            n = batch_size_of(x)
            z = z0.detach().double().flatten(1)
            z_sum = z.sum(0) if z_sum is None else z_sum + z.sum(0)
            z_sq = (z * z).sum(0) if z_sq is None else z_sq + (z * z).sum(0)
            if is_image(cfg):
                vals = {"val_psnr": psnr(x_hat, x).sum().item(),
                        "val_l1": (x_hat.float() - x.float()).abs().flatten(1).mean(1).sum().item()}
            else:
                from unite.models.atoms import recon_loss

                _, parts = recon_loss(cfg, x_hat, x)
                vals = {f"val_{k}": float(v) * n for k, v in parts.items()}
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v
            count += n
    out = {k: v / max(count, 1) for k, v in sums.items()}
    if count > 1:
        var = (z_sq - z_sum * z_sum / count) / (count - 1)
        out["val_latent_std"] = var.clamp(min=0).sqrt().mean().item()
    return out


# --------------------------------------------------------------------------------------------
# RNG, run folder, resume
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


def autocast_for(cfg: Config, device: torch.device):
    precision = cfg.train.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def train(
    cfg: Config,
    out_dir: str | Path,
    *,
    device: str = "auto",
    progress: bool = True,
    datasets: tuple[Dataset, Dataset | None] | None = None,
    after_step=None,
) -> dict:
    """Train (or resume) into ``out_dir``. Returns ``{"status": "done"|"interrupted", ...}``.

    ``datasets`` replaces ``build_dataset(cfg, "train"/"val")`` (tests); ``after_step(step)`` is
    called after every optimizer step (tests use it to deliver a signal at a known step).
    """
    env = distributed.setup(device)
    out = Path(out_dir)
    lock = None
    try:
        if env.is_main:
            # a read-only folder fails now, not at the first checkpoint; a second trainer on
            # this folder is refused; temp files of killed checkpoint writers are removed
            check_writable(out / "checkpoints")
            out.mkdir(parents=True, exist_ok=True)
            lock = RunLock(out).acquire()
            clean_stale_temps(out / "checkpoints")
            clean_stale_temps(out)
        return _train(cfg, out, env, progress, datasets, after_step)
    finally:
        if lock is not None:
            lock.release()
        distributed.teardown(env)


def _train(cfg, out, env, progress, datasets, after_step) -> dict:
    t = cfg.train
    dev = env.device
    ckpt_path = out / "checkpoints" / "last.pt"
    metrics_path = out / "metrics.jsonl"

    train_set, val_set = datasets if datasets is not None else (build_dataset(cfg, "train"), None)
    if datasets is None:
        try:
            val_set = build_dataset(cfg, "val")
        except UserError:
            val_set = None  # a dataset without a val split: no held-out eval

    seed_everything(t.seed)  # identical init on every rank
    model = build_model(cfg).to(dev)
    ema = EMA(model, t.ema_decay)
    acceleration.configure(cfg, dev)
    acceleration.compile_model(cfg, model)  # after the EMA copy: the EMA stays eager
    objective = JointObjective(model, cfg).to(dev)
    optimizers = build_optimizers(model, cfg)
    schedule = WarmupCosine.from_config(cfg)
    seed_everything(training_seed(t.seed, env.rank))

    step = 0
    saved = checkpoint.read(ckpt_path) if ckpt_path.exists() else None
    run_config = config_mod.to_dict(cfg)  # what RUN/config.yaml shows: the config of last.pt
    if saved is not None:
        check_resumable(saved["config"], cfg, ckpt_path)
        if int(saved.get("step", 0)) > t.steps:
            raise UserError(
                f"{ckpt_path} already holds {int(saved['step'])} trained steps, more than "
                f"train.steps={t.steps}: a run cannot be shortened; use a new --out folder (or "
                f"delete {out}) to train {t.steps} steps"
            )
        run_config = saved["config"]
        checkpoint.load_weights(model, saved["model"], ckpt_path)
        checkpoint.load_weights(ema.module, saved["ema"], ckpt_path, "EMA weights")
        if len(saved["optimizers"]) != len(optimizers):
            raise UserError(f"{ckpt_path}: optimizer layout differs (train.muon changed?)")
        for opt, state in zip(optimizers, saved["optimizers"]):
            opt.load_state_dict(state)
        step = int(saved["step"])
        restore_rng(saved["rng"], env, dev)
        del saved
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        # on resume the checkpoint's own config: a longer train.steps is written with the
        # next checkpoint, so the file never describes a run that last.pt does not hold
        config_mod.dump(run_config, out / "config.yaml")
        truncate_metrics(metrics_path, step)
    if step >= t.steps:
        if env.is_main:
            print(json.dumps({"status": "done", "step": step, "run": str(out),
                              "note": "already complete"}))
        return {"status": "done", "step": step}

    loader = make_loader(train_set, cfg, env, start=step * t.grad_accum)
    batches = iter(loader)
    val_loader = None
    if val_set is not None and env.is_main and len(val_set) > 0:
        subset = Subset(val_set, range(min(t.eval_samples, len(val_set))))
        val_loader = DataLoader(subset, batch_size=64, shuffle=False,
                                collate_fn=getattr(val_set, "collate_fn", None))

    wrapped: nn.Module = objective
    if env.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # separate encoder/denoiser (or flow_weight 0) can leave parameters without gradient
        wrapped = DDP(objective, device_ids=[dev.index] if dev.type == "cuda" else None,
                      find_unused_parameters=not model.shared or t.flow_weight == 0)
    autocast = autocast_for(cfg, dev)
    params = [p for p in model.parameters() if p.requires_grad]

    def save(at_step: int) -> None:
        rngs = distributed.gather_objects(env, rng_state(dev))
        if env.is_main:
            checkpoint.save_atomic(
                {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers],
                    "scheduler": schedule.state_dict(),
                    "step": at_step,
                    "rng": rngs,
                    "config": config_mod.to_dict(cfg),
                    "meta": {"fine_tuned": False},
                },
                ckpt_path,
            )
            config_mod.dump(cfg, out / "config.yaml")
        distributed.barrier(env)

    def log(record: dict) -> None:
        if env.is_main:
            try:  # appended, not replaced: a torn last line is dropped on resume
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as exc:
                if exc.errno in ENVIRONMENT_ERRNOS:
                    raise environment_error(metrics_path, exc) from None
                raise

    def run_eval(at_step: int) -> dict:
        if val_loader is None:
            return {}
        result = evaluate(ema.module, val_loader, cfg, dev, autocast)
        log({"kind": "eval", "step": at_step, **result})
        return result

    stop = StopFlag().install()
    bar = None
    if env.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=t.steps, initial=step, desc="train", dynamic_ncols=True, file=sys.stderr)
    sums: dict[str, torch.Tensor] = {}
    norm_sum, n_steps, n_micro = 0.0, 0, 0
    last_time, last_eval = time.perf_counter(), {}
    model.train()
    objective.train()
    try:
        while step < t.steps:
            lr = schedule.apply(optimizers, step)
            objective.step = step
            for micro in range(t.grad_accum):
                x, y = next(batches)
                x, y = to_device(x, dev), y.to(dev, non_blocking=True)
                sync = micro == t.grad_accum - 1
                ctx = wrapped.no_sync() if env.enabled and not sync else contextlib.nullcontext()
                with ctx:
                    with autocast():
                        loss, parts = wrapped(x, y)
                    (loss / t.grad_accum).backward()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_micro += 1
            grad_norm = optimizer_step(optimizers, params, t.grad_clip)
            ema.update(model)
            step += 1
            norm_sum += float(grad_norm)
            n_steps += 1
            if bar is not None:
                bar.update(1)

            final = step == t.steps
            if step % t.log_every == 0 or final:
                now = time.perf_counter()
                means = {k: float(v) / n_micro for k, v in sums.items()}
                means = distributed.mean_over_ranks(env, means)
                if not math.isfinite(means["loss"]):
                    raise RuntimeError(
                        f"non-finite loss at step {step}; {ckpt_path} keeps the last good state"
                    )
                record = {"kind": "train", "step": step, **means, "lr": lr,
                          "grad_norm": norm_sum / n_steps,
                          "samples_per_s": n_steps * t.batch_size / (now - last_time)}
                log(record)
                if bar is not None:
                    bar.set_postfix({k: f"{means[k]:.4f}" for k in ("loss", "recon", "flow")})
                sums, norm_sum, n_steps, n_micro, last_time = {}, 0.0, 0, 0, now
            if (t.ckpt_every and step % t.ckpt_every == 0) or final:
                save(step)
            if env.is_main and ((t.eval_every and step % t.eval_every == 0) or final):
                last_eval = run_eval(step)
                if bar is not None and "val_psnr" in last_eval:
                    bar.set_postfix({"val_psnr": f"{last_eval['val_psnr']:.2f}"})
            if after_step is not None:
                after_step(step)
            if distributed.any_flag(env, stop.signum is not None) and not final:
                if t.ckpt_every == 0 or step % t.ckpt_every:
                    save(step)
                signum = stop.signum or signal.SIGTERM
                if env.is_main:
                    print(json.dumps({"status": "interrupted", "signal": signal.Signals(signum).name,
                                      "step": step, "checkpoint": str(ckpt_path)}))
                return {"status": "interrupted", "step": step, "signal": int(signum)}
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
    summary = {"status": "done", "step": step, "run": str(out), **last_eval}
    if env.is_main:
        print(json.dumps(summary))
    return summary


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "experiments" / "digits.yaml"


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=None,
                        help=f"experiment YAML (default: the embedded digits config {DEFAULT_CONFIG.name})")
    parser.add_argument("--out", required=True, help="run folder (resumes if it has checkpoints/last.pt)")
    parser.set_defaults(_out_is_folder=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.lr=3e-4 (repeatable)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (0 = torch's default); on a shared machine 1 "
                        "avoids OpenMP threads spinning against other jobs")


def run(args) -> None:
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    cfg = config_mod.load(path, args.set)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = train(cfg, args.out, device=args.device, progress=not args.no_progress)
    if result["status"] == "interrupted":
        sys.exit(128 + result["signal"])
