"""``python -m unite train``: single-stage joint training of GE + decoder (REFERENCE section 2).

This module is the loop. The maths of a step is :class:`unite.objective.JointObjective`;
resuming is :mod:`unite.resume`; optimisation is :mod:`unite.optim` (Muon + AdamW, warm-up +
cosine in optimizer steps, ``optimizer_step``: clipping over all parameters, EMA of the whole
model); ``grad_accum`` micro-batches per optimizer step (``batch_size`` is the global batch
over ranks and micro-batches); bf16 autocast on CUDA (``acceleration.autocast_for``), fp32 on
CPU; DDP under torchrun.

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
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from unite import acceleration, checkpoint, distributed
from unite import config as config_mod
from unite.acceleration import autocast_for
from unite.atomic import ENVIRONMENT_ERRNOS, check_writable, clean_stale_temps, environment_error
from unite.cliargs import add_device, add_set
from unite.config import Config
from unite.data import train_and_val
from unite.errors import UserError
from unite.modality import to_device
from unite.models import build_model
from unite.objective import JointObjective
from unite.optim import EMA, WarmupCosine, build_optimizers, optimizer_step
from unite.resume import (
    StopFlag,
    check_resumable,
    make_loader,
    restore_rng,
    rng_state,
    seed_everything,
    training_seed,
    truncate_metrics,
)
from unite.runlock import RunLock
from unite.validation import evaluate


# --------------------------------------------------------------------------------------------
# the run: model, optimisation state and run folder
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    """What the loop trains and where it writes: built by :func:`build_run`."""

    cfg: Config
    env: distributed.DistEnv
    out: Path
    model: nn.Module
    ema: EMA
    objective: JointObjective
    optimizers: list
    schedule: WarmupCosine
    step: int = 0
    run_config: dict | None = None  # what RUN/config.yaml shows: the config of last.pt

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"


def build_run(cfg: Config, out: Path, env) -> Run:
    """Model, EMA, objective, optimizers and LR schedule at step 0 (identical init on every
    rank), then the per-rank training random stream."""
    t, dev = cfg.train, env.device
    seed_everything(t.seed)  # identical init on every rank
    model = build_model(cfg).to(dev)
    ema = EMA(model, t.ema_decay)
    acceleration.configure(cfg, dev)
    acceleration.compile_model(cfg, model)  # after the EMA copy: the EMA stays eager
    objective = JointObjective(model, cfg).to(dev)
    optimizers = build_optimizers(model, cfg)
    schedule = WarmupCosine.from_config(cfg)
    seed_everything(training_seed(t.seed, env.rank))
    return Run(cfg, env, out, model, ema, objective, optimizers, schedule,
               run_config=config_mod.to_dict(cfg))


def resume(run: Run) -> None:
    """Load ``last.pt`` when it exists: weights, EMA, optimizers, step and this rank's RNG."""
    path, t = run.ckpt_path, run.cfg.train
    if not path.exists():
        return
    saved = checkpoint.read(path)
    check_resumable(saved["config"], run.cfg, path)
    if int(saved.get("step", 0)) > t.steps:
        raise UserError(
            f"{path} already holds {int(saved['step'])} trained steps, more than "
            f"train.steps={t.steps}: a run cannot be shortened; use a new --out folder (or "
            f"delete {run.out}) to train {t.steps} steps"
        )
    run.run_config = saved["config"]
    checkpoint.load_weights(run.model, saved["model"], path)
    checkpoint.load_weights(run.ema.module, saved["ema"], path, "EMA weights")
    if len(saved["optimizers"]) != len(run.optimizers):
        raise UserError(f"{path}: optimizer layout differs (train.muon changed?)")
    for opt, state in zip(run.optimizers, saved["optimizers"]):
        opt.load_state_dict(state)
    run.step = int(saved["step"])
    restore_rng(saved["rng"], run.env, run.env.device)


def write_checkpoint(run: Run) -> None:
    """``last.pt`` at ``run.step`` (every rank's RNG state gathered) and RUN/config.yaml."""
    rngs = distributed.gather_objects(run.env, rng_state(run.env.device))
    if run.env.is_main:
        checkpoint.save_atomic(
            {
                "model": run.model.state_dict(),
                "ema": run.ema.state_dict(),
                "optimizers": [o.state_dict() for o in run.optimizers],
                "scheduler": run.schedule.state_dict(),
                "step": run.step,
                "rng": rngs,
                "config": config_mod.to_dict(run.cfg),
                "meta": {"fine_tuned": False},
            },
            run.ckpt_path,
        )
        config_mod.dump(run.cfg, run.out / "config.yaml")
    distributed.barrier(run.env)


def log(run: Run, record: dict) -> None:
    """Append one line to RUN/metrics.jsonl (main rank)."""
    if run.env.is_main:
        try:  # appended, not replaced: a torn last line is dropped on resume
            with run.metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            if exc.errno in ENVIRONMENT_ERRNOS:
                raise environment_error(run.metrics_path, exc) from None
            raise


def eval_loader(val_set: Dataset | None, eval_samples: int, env) -> DataLoader | None:
    """The fixed held-out subset (first ``eval_samples`` items), main rank only."""
    if val_set is None or not env.is_main or len(val_set) == 0:
        return None
    subset = Subset(val_set, range(min(eval_samples, len(val_set))))
    return DataLoader(subset, batch_size=64, shuffle=False,
                      collate_fn=getattr(val_set, "collate_fn", None))


def run_eval(run: Run, val_loader: DataLoader | None, autocast) -> dict:
    """Evaluate the EMA on the held-out subset and log it."""
    if val_loader is None:
        return {}
    result = evaluate(run.ema.module, val_loader, run.cfg, run.env.device, autocast)
    log(run, {"kind": "eval", "step": run.step, **result})
    return result


def wrap_for_ranks(run: Run) -> nn.Module:
    """The objective, wrapped in DDP under torchrun (DDP syncs only what its forward runs)."""
    if not run.env.enabled:
        return run.objective
    from torch.nn.parallel import DistributedDataParallel as DDP

    dev = run.env.device
    # separate encoder/denoiser (or flow_weight 0) can leave parameters without gradient
    return DDP(run.objective, device_ids=[dev.index] if dev.type == "cuda" else None,
               find_unused_parameters=not run.model.shared or run.cfg.train.flow_weight == 0)


# --------------------------------------------------------------------------------------------
# one optimizer step and its log line
# --------------------------------------------------------------------------------------------
class Meter:
    """Sums of the logged values between two ``train`` log lines (tensors: no sync per step)."""

    def __init__(self):
        self.reset(time.perf_counter())

    def reset(self, now: float) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.norm_sum, self.n_steps, self.n_micro, self.since = 0.0, 0, 0, now

    def record(self, run: Run, lr: float) -> dict:
        """The ``train`` line (means over ranks); a non-finite loss stops the run."""
        now = time.perf_counter()
        means = {k: float(v) / self.n_micro for k, v in self.sums.items()}
        means = distributed.mean_over_ranks(run.env, means)
        if not math.isfinite(means["loss"]):
            raise RuntimeError(
                f"non-finite loss at step {run.step}; {run.ckpt_path} keeps the last good state"
            )
        record = {"kind": "train", "step": run.step, **means, "lr": lr,
                  "grad_norm": self.norm_sum / self.n_steps,
                  "samples_per_s": self.n_steps * run.cfg.train.batch_size / (now - self.since)}
        self.reset(now)
        return record


def train_step(run: Run, wrapped: nn.Module, batches, autocast, params, meter: Meter) -> None:
    """``grad_accum`` micro-batches (DDP syncs gradients on the last), one optimizer step, the
    EMA update."""
    t, env = run.cfg.train, run.env
    for micro in range(t.grad_accum):
        x, y = next(batches)
        x, y = to_device(x, env.device), y.to(env.device, non_blocking=True)
        sync = micro == t.grad_accum - 1
        ctx = wrapped.no_sync() if env.enabled and not sync else contextlib.nullcontext()
        with ctx:
            with autocast():
                loss, parts = wrapped(x, y)
            (loss / t.grad_accum).backward()
        for k, v in parts.items():
            meter.sums[k] = meter.sums.get(k, 0.0) + v
        meter.n_micro += 1
    grad_norm = optimizer_step(run.optimizers, params, t.grad_clip)
    run.ema.update(run.model)
    run.step += 1
    meter.norm_sum += float(grad_norm)
    meter.n_steps += 1


def interrupt(run: Run, signum: int | None) -> dict:
    """A stop signal arrived: checkpoint (unless this step just did) and report it."""
    t = run.cfg.train
    if t.ckpt_every == 0 or run.step % t.ckpt_every:
        write_checkpoint(run)
    signum = signum or signal.SIGTERM
    if run.env.is_main:
        print(json.dumps({"status": "interrupted", "signal": signal.Signals(signum).name,
                          "step": run.step, "checkpoint": str(run.ckpt_path)}))
    return {"status": "interrupted", "step": run.step, "signal": int(signum)}


def every(n: int, step: int) -> bool:
    return bool(n) and step % n == 0


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
    train_set, val_set = datasets if datasets is not None else train_and_val(cfg)
    run = build_run(cfg, out, env)
    resume(run)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        # on resume the checkpoint's own config: a longer train.steps is written with the
        # next checkpoint, so the file never describes a run that last.pt does not hold
        config_mod.dump(run.run_config, out / "config.yaml")
        truncate_metrics(run.metrics_path, run.step)
    if run.step >= t.steps:
        if env.is_main:
            print(json.dumps({"status": "done", "step": run.step, "run": str(out),
                              "note": "already complete"}))
        return {"status": "done", "step": run.step}

    batches = iter(make_loader(train_set, cfg, env, start=run.step * t.grad_accum))
    val_loader = eval_loader(val_set, t.eval_samples, env)
    wrapped = wrap_for_ranks(run)
    autocast = autocast_for(cfg, env.device)
    params = [p for p in run.model.parameters() if p.requires_grad]
    stop = StopFlag().install()
    bar = None
    if env.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=t.steps, initial=run.step, desc="train", dynamic_ncols=True,
                   file=sys.stderr)
    meter, last_eval = Meter(), {}
    run.model.train()
    run.objective.train()
    try:
        while run.step < t.steps:
            lr = run.schedule.apply(run.optimizers, run.step)
            run.objective.step = run.step
            train_step(run, wrapped, batches, autocast, params, meter)
            if bar is not None:
                bar.update(1)
            final = run.step == t.steps
            if every(t.log_every, run.step) or final:
                means = meter.record(run, lr)
                log(run, means)
                if bar is not None:
                    bar.set_postfix({k: f"{means[k]:.4f}" for k in ("loss", "recon", "flow")})
            if every(t.ckpt_every, run.step) or final:
                write_checkpoint(run)
            if env.is_main and (every(t.eval_every, run.step) or final):
                last_eval = run_eval(run, val_loader, autocast)
                if bar is not None and "val_psnr" in last_eval:
                    bar.set_postfix({"val_psnr": f"{last_eval['val_psnr']:.2f}"})
            if after_step is not None:
                after_step(run.step)
            if distributed.any_flag(env, stop.signum is not None) and not final:
                return interrupt(run, stop.signum)
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
    summary = {"status": "done", "step": run.step, "run": str(out), **last_eval}
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
    add_set(parser)
    add_device(parser)
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
