"""``python -m unite finetune``: GAN decoder fine-tuning after joint training (paper App. A).

What the paper says (REFERENCE section 6): freeze the Generative Encoder entirely, train only
the decoder for 16 epochs with an adversarial loss added to the reconstruction loss, and
initialise the discriminator from the trained GE (no external network such as DINOv2).
rFID 1.01 -> 0.51, gFID unchanged. Everything else is our choice (docs/finetune.md):

* **Frozen GE.** The GE weights evaluation uses (the EMA, unless ``sample.use_ema`` is off)
  produce ``z0`` under ``no_grad``; no GE parameter has ``requires_grad``. The output
  checkpoint copies every GE tensor of the input, raw and EMA, so they are bit-identical
  (checked before the file is written). Only ``decoder.*`` entries change.
* **Decoder input.** ``z0`` corrupted by ``train.recon_noise`` exactly as in joint training
  (``finetune.recon_noise``): the decoder keeps decoding the imperfect latents that sampling
  hands it, which is what "gFID unchanged" needs.
* **Losses.** ``train.l1_weight * L1 + train.lpips_weight * LPIPS`` (training's ``ReconLoss``)
  plus ``w * L_adv``. ``finetune.gan_loss``: ``hinge`` (VQGAN) or ``non_saturating``
  (softplus). ``w = disc_weight * |grad_L recon| / (|grad_L adv| + 1e-4)`` at the decoder's
  last layer ``L`` (VQGAN's adaptive weight, clamped to ``max_adaptive_weight``), or the fixed
  ``disc_weight`` with ``adaptive_weight: false``.
* **Discriminator.** A trainable copy of the GE run in tokenization mode on the image
  (registers from N(0, I), null class, t ~ U[0, 0.01), as the tokenizer runs), and a head
  ``LayerNorm + Linear(width -> 1)`` on every register and patch token of the last block's
  output: K + P logits per image, averaged by the loss (PatchGAN-like). The head's Linear
  starts at zero, so the first logits are 0. The copy's final layer and latent LayerNorm are
  not used and not trained. AdamW, betas (0.5, 0.9), ``finetune.disc_lr``.
* **Schedule.** ``finetune.disc_warmup_steps`` discriminator-only steps first; then every
  step updates the decoder (on its adversarial + recon loss) and the discriminator (on the
  same real batch and the detached reconstructions). Decoder optimizers as in training
  (``unite.optim.build_optimizers``: Muon + AdamW, or AdamW), LR ``finetune.lr`` after a
  linear warm-up, constant. Decoder EMA with ``finetune.ema_decay``, started from the input's
  EMA decoder (the one evaluation used before fine-tuning).

Run folder (``--run``, default ``<out>_run/``): ``config.yaml``, ``metrics.jsonl`` (``"kind":
"finetune"`` / ``"eval"`` lines; eval = EMA-decoder val PSNR/L1, also at step 0),
``checkpoints/last.pt`` (decoder, decoder EMA, discriminator, optimizers, step, per-rank RNG)
and ``loss_curves.png``. Resume, SIGTERM/SIGUSR1 (exit 128 + signal) and DDP work exactly as
in ``unite.training``; that machinery is ``unite.resume``'s, shared by both.

The output checkpoint is the input with new ``decoder.*`` weights and ``meta.fine_tuned =
true`` plus ``meta.finetune`` (steps, epochs, batch, loss, weights), which every sample file,
metric file and table row downstream carries (:func:`scale_fields`). Molecules and crystals
are not fine-tuned in the paper: the command refuses them and their results say "not
applicable".
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unite.adversarial import (
    Discriminator,
    adaptive_weight,
    discriminator_loss,
    generator_loss,
    last_layer,
)
from unite.cliargs import add_device, add_set

NOT_APPLICABLE = "not applicable"
NOT_APPLICABLE_REASON = ("the paper fine-tunes only the image decoder (App. A); molecule and "
                         "crystal decoders are not fine-tuned")
STATE_KEYS = ("decoder", "decoder_ema", "discriminator", "config", "step")


def loss_label(info: dict) -> str:
    """'hinge, adaptive weight x0.5' / 'non_saturating, fixed weight 0.1' (tables, meta)."""
    how = "adaptive weight x" if info.get("adaptive_weight") else "fixed weight "
    return f"{info.get('gan_loss')}, {how}{info.get('disc_weight'):g}"


# --------------------------------------------------------------------------------------------
# checkpoints in, checkpoint out
# --------------------------------------------------------------------------------------------
def ge_keys(state: dict) -> list[str]:
    """Every entry of a UNITE state dict that is not the decoder's (the GE, both roles)."""
    return [k for k in state if not k.startswith("decoder.")]


def with_decoder(state: dict, decoder_state: dict) -> dict:
    """``state`` with its ``decoder.*`` entries replaced; GE tensors are the same objects."""
    new = {f"decoder.{k}": v for k, v in decoder_state.items()}
    missing = set(new) ^ {k for k in state if k.startswith("decoder.")}
    if missing:
        raise RuntimeError(f"decoder keys differ from the checkpoint's: {sorted(missing)[:5]}")
    return {k: new.get(k, v) for k, v in state.items()}


def assert_ge_unchanged(before: dict, after: dict) -> None:
    for key in ("model", "ema"):
        if before.get(key) is None:
            continue
        for name in ge_keys(before[key]):
            if not torch.equal(before[key][name], after[key][name]):
                raise RuntimeError(f"GE tensor {key}.{name} changed during fine-tuning")


def output_checkpoint(source: dict, decoder_state: dict, decoder_ema_state: dict,
                      info: dict, finetune_section: dict | None = None) -> dict:
    """The input checkpoint with the fine-tuned decoder (raw and EMA), the meta, and the
    ``finetune`` config section that was used (the rest of the config stays the input's)."""
    out = dict(source)
    if finetune_section is not None:
        out["config"] = {**source["config"], "finetune": dict(finetune_section)}
    out["model"] = with_decoder(source["model"], decoder_state)
    ema = source.get("ema") if source.get("ema") is not None else source["model"]
    out["ema"] = with_decoder(ema, decoder_ema_state)
    out["meta"] = {**(source.get("meta") or {}), "fine_tuned": True, "finetune": info}
    return out


def check_same_model(ckpt_cfg, cfg) -> None:
    """The fine-tuning config must describe the checkpoint's model and data shape."""
    from unite.config import flatten
    from unite.errors import UserError

    a = flatten({"model": vars(ckpt_cfg.model), "data": {
        k: getattr(ckpt_cfg.data, k) for k in ("kind", "image_size", "num_classes")}})
    b = flatten({"model": vars(cfg.model), "data": {
        k: getattr(cfg.data, k) for k in ("kind", "image_size", "num_classes")}})
    diff = [k for k in a if a[k] != b[k] and k != "model.grad_checkpointing"]
    if diff:
        detail = ", ".join(f"{k}: {a[k]!r} (checkpoint) vs {b[k]!r}" for k in diff)
        raise UserError(f"--config describes another model than the checkpoint ({detail})")


def budget_steps(cfg, train_size: int, batch: int) -> int:
    """Optimizer steps of the fine-tuning: ``finetune.steps``, or ``epochs`` over the split."""
    ft = cfg.finetune
    if ft.steps:
        return ft.steps
    return math.ceil(ft.epochs * (train_size // batch))


def scale_fields(cfg, ckpt_meta: dict) -> dict:
    """The fine-tuning fields that sample files, metric files and table rows carry."""
    from unite.modality import is_image

    if not is_image(cfg):
        return {"fine_tuned": False, "finetune": NOT_APPLICABLE}
    info = ckpt_meta.get("finetune")
    if not ckpt_meta.get("fine_tuned") or not isinstance(info, dict):
        return {"fine_tuned": False}
    return {"fine_tuned": True, "finetune_steps": info.get("steps"),
            "finetune_epochs": info.get("epochs"), "finetune_loss": loss_label(info)}


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def finetune(cfg, ckpt_path, out_path, run_dir=None, *, device: str = "auto",
             progress: bool = True, datasets=None, after_step=None, source: dict | None = None
             ) -> dict:
    """Fine-tune the decoder of ``ckpt_path`` into ``out_path`` (resumes from ``run_dir``).

    Returns ``{"status": "done"|"interrupted", "step": ...}``. ``datasets`` replaces
    ``build_dataset(cfg, "train"/"val")`` and ``after_step(step)`` runs after every step
    (tests); ``source``: the already-read input checkpoint.
    """
    from unite import checkpoint, distributed
    from unite.atomic import check_writable, clean_stale_temps
    from unite.runlock import RunLock

    out_path = Path(out_path)
    run = Path(run_dir) if run_dir else out_path.with_name(out_path.stem + "_run")
    source = source if source is not None else checkpoint.read(ckpt_path)
    env = distributed.setup(device)
    lock = None
    try:
        if env.is_main:
            # as training: a read-only folder fails now, a second fine-tuner on this folder is
            # refused, temp files of killed checkpoint writers are removed
            check_writable(run / "checkpoints")
            check_writable(out_path.parent)
            run.mkdir(parents=True, exist_ok=True)
            lock = RunLock(run).acquire()
            clean_stale_temps(run / "checkpoints")
            clean_stale_temps(run)
        return _finetune(cfg, Path(ckpt_path), source, out_path, run, env, progress, datasets,
                         after_step)
    finally:
        if lock is not None:
            lock.release()
        distributed.teardown(env)


def _finetune(cfg, ckpt_path, source, out_path, run, env, progress, datasets, after_step):
    from torch.utils.data import DataLoader, Subset

    from unite import checkpoint, distributed
    from unite import config as config_mod
    from unite.acceleration import autocast_for
    from unite.data import train_and_val
    from unite.errors import UserError
    from unite.losses import ReconLoss
    from unite.modality import to_device
    from unite.models import build_model
    from unite.models.unite_model import UNITE
    from unite.objective import add_recon_noise
    from unite.optim import EMA, WarmupCosine, build_optimizers, optimizer_step
    from unite.resume import (
        StopFlag,
        make_loader,
        rng_state,
        seed_everything,
        truncate_metrics,
    )
    from unite.validation import evaluate

    ft = cfg.finetune
    dev = env.device
    _check_source(cfg, source, ckpt_path)
    source_step = int(source.get("step", 0))

    train_set, val_set = datasets if datasets is not None else train_and_val(cfg)
    batch = ft.batch_size or cfg.train.batch_size
    if len(train_set) < batch:
        raise UserError(f"the training set has {len(train_set)} examples, fewer than one "
                        f"fine-tuning batch ({batch}); lower finetune.batch_size")
    if batch % (env.world * ft.grad_accum):
        raise UserError(f"finetune batch {batch} (global) must be divisible by ranks x "
                        f"finetune.grad_accum = {env.world} x {ft.grad_accum}")
    # the data stream of training (resumable sampler), with the fine-tuning batch and seed
    loader_cfg = copy.deepcopy(cfg)
    loader_cfg.train.batch_size, loader_cfg.train.grad_accum = batch, ft.grad_accum
    loader_cfg.train.seed = ft.seed
    total = budget_steps(cfg, len(train_set), batch)

    # model: the weights evaluation uses; the GE frozen, the decoder trainable
    use_ema = cfg.sample.use_ema and source.get("ema") is not None
    seed_everything(ft.seed)
    model = build_model(cfg).to(dev)
    model.load_state_dict(source["ema"] if use_ema else source["model"])
    model.requires_grad_(False)
    model.decoder.requires_grad_(True)
    model.train()
    model.encoder.eval()  # frozen
    disc = Discriminator(model.encoder).to(dev).train()
    disc_params = disc.trainable()
    ema = EMA(model.decoder, ft.ema_decay)
    optimizers = build_optimizers(model, cfg)  # only decoder parameters require grad
    disc_opt = torch.optim.AdamW(disc_params, lr=ft.disc_lr, betas=(0.5, 0.9), weight_decay=0.0)
    schedule = WarmupCosine(ft.lr, ft.lr, ft.warmup_steps, max(total, 1))  # constant after warm-up
    recon_loss = ReconLoss(cfg).to(dev).train()
    seed_everything(finetune_seed(ft.seed, env.rank))

    state_path = run / "checkpoints" / "last.pt"
    metrics_path = run / "metrics.jsonl"
    step = 0
    if state_path.exists():
        step = _restore(state_path, cfg, ckpt_path, source_step, env, model.decoder, ema, disc,
                        optimizers, disc_opt)
    if env.is_main:
        run.mkdir(parents=True, exist_ok=True)
        config_mod.dump(cfg, run / "config.yaml")
        truncate_metrics(metrics_path, step)

    info = {"steps": total, "epochs": round(total * batch / len(train_set), 3),
            "batch_size": batch, "gan_loss": ft.gan_loss, "adaptive_weight": ft.adaptive_weight,
            "disc_weight": ft.disc_weight, "disc_warmup_steps": ft.disc_warmup_steps,
            "lr": ft.lr, "disc_lr": ft.disc_lr, "recon_noise": ft.recon_noise,
            "ema_decay": ft.ema_decay, "source_step": source_step,
            "ge_weights": "ema" if use_ema else "model",
            "discriminator": "GE tokenization-pass copy + LayerNorm/Linear per output token"}

    def finish(status: str) -> dict:
        if env.is_main:
            out = output_checkpoint(source, model.decoder.state_dict(), ema.state_dict(), info,
                                    config_mod.to_dict(cfg)["finetune"])
            assert_ge_unchanged(source, out)
            checkpoint.save_atomic(out, out_path)
            _plot(metrics_path, run / "loss_curves.png", cfg.name)
            summary = {"status": status, "step": step, "out": str(out_path), "run": str(run),
                       **last_eval}
            print(json.dumps(summary))
        distributed.barrier(env)
        return {"status": status, "step": step}

    last_eval: dict = {}
    if step >= total:
        return finish("done")

    loader = make_loader(train_set, loader_cfg, env, start=step * ft.grad_accum)
    batches = iter(loader)
    val_loader = None
    if val_set is not None and env.is_main and len(val_set) > 0:
        subset = Subset(val_set, range(min(cfg.train.eval_samples, len(val_set))))
        val_loader = DataLoader(subset, batch_size=64, shuffle=False)
    eval_model = UNITE(model.encoder, ema.module)

    g_wrapped: nn.Module = model.decoder
    d_wrapped: nn.Module = disc
    if env.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [dev.index] if dev.type == "cuda" else None
        g_wrapped = DDP(model.decoder, device_ids=ids)
        d_wrapped = DDP(disc, device_ids=ids, find_unused_parameters=True)
    autocast = autocast_for(cfg, dev)
    g_params = list(model.decoder.parameters())
    gan = _GanParts(model, disc, disc_params, g_wrapped, d_wrapped, recon_loss,
                    last_layer(model.decoder), autocast,
                    add_recon_noise if ft.recon_noise else None)

    def save(at_step: int) -> None:
        rngs = distributed.gather_objects(env, rng_state(dev))
        if env.is_main:
            checkpoint.save_atomic({
                "decoder": model.decoder.state_dict(), "decoder_ema": ema.state_dict(),
                "discriminator": disc.state_dict(),
                "optimizers": [o.state_dict() for o in optimizers],
                "disc_optimizer": disc_opt.state_dict(), "step": at_step, "rng": rngs,
                "config": config_mod.to_dict(cfg), "source_step": source_step,
                "source": str(ckpt_path)}, state_path)
        distributed.barrier(env)

    def log(record: dict) -> None:
        if env.is_main:
            with metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def run_eval(at_step: int) -> dict:
        if val_loader is None:
            return {}
        result = evaluate(eval_model, val_loader, cfg, dev, autocast)
        log({"kind": "eval", "step": at_step, **result})
        return result

    if step == 0 and env.is_main:
        last_eval = run_eval(0)  # the input's EMA decoder: the "before" of this run
    stop = StopFlag().install()
    bar = None
    if env.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc="finetune", dynamic_ncols=True,
                   file=sys.stderr)
    sums: dict = {}
    counts: dict[str, int] = {}
    last_time, n_steps = time.perf_counter(), 0

    def add(key: str, value) -> None:
        """Accumulate a logged value (tensors stay on the device: no sync per step)."""
        value = value.detach().float() if torch.is_tensor(value) else float(value)
        sums[key] = sums.get(key, 0.0) + value
        counts[key] = counts.get(key, 0) + 1

    try:
        while step < total:
            update_g = step >= ft.disc_warmup_steps
            lr = schedule.apply(optimizers, step - ft.disc_warmup_steps) if update_g else 0.0
            for micro in range(ft.grad_accum):
                x, _ = next(batches)
                x = to_device(x, dev)
                sync = micro == ft.grad_accum - 1
                with contextlib.ExitStack() as ctx:
                    if env.enabled and not sync:
                        ctx.enter_context(g_wrapped.no_sync())
                        ctx.enter_context(d_wrapped.no_sync())
                    _micro_step(gan, cfg, x, update_g, add)
            if update_g:
                norm = optimizer_step(optimizers, g_params, ft.grad_clip)
                ema.update(model.decoder)
                add("grad_norm", norm)
            d_norm = optimizer_step([disc_opt], disc_params, ft.grad_clip)
            add("disc_grad_norm", d_norm)
            step += 1
            n_steps += 1
            if bar is not None:
                bar.update(1)

            final = step == total
            if step % ft.log_every == 0 or final:
                now = time.perf_counter()
                means = distributed.mean_over_ranks(
                    env, {k: float(sums[k]) / counts[k] for k in sorted(sums)})
                if not all(math.isfinite(v) for v in means.values()):
                    raise RuntimeError(f"non-finite fine-tuning loss at step {step}: {means}; "
                                       f"{state_path} keeps the last good state")
                log({"kind": "finetune", "step": step, **means, "lr": lr,
                     "samples_per_s": n_steps * batch / (now - last_time)})
                if bar is not None:
                    bar.set_postfix({k: f"{means[k]:.3f}" for k in ("recon", "d_loss")
                                     if k in means})
                sums, counts, n_steps, last_time = {}, {}, 0, now
            if (ft.ckpt_every and step % ft.ckpt_every == 0) or final:
                save(step)
            if env.is_main and ((ft.eval_every and step % ft.eval_every == 0) or final):
                last_eval = run_eval(step)
            if after_step is not None:
                after_step(step)
            if distributed.any_flag(env, stop.signum is not None) and not final:
                if ft.ckpt_every == 0 or step % ft.ckpt_every:
                    save(step)
                signum = stop.signum or signal.SIGTERM
                if env.is_main:
                    print(json.dumps({"status": "interrupted",
                                      "signal": signal.Signals(signum).name, "step": step,
                                      "checkpoint": str(state_path)}))
                return {"status": "interrupted", "step": step, "signal": int(signum)}
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
    return finish("done")


def _check_source(cfg, source: dict, ckpt_path: Path) -> None:
    """Refuse what cannot be fine-tuned: a non-image model, another architecture than the
    config's, an empty budget, an already fine-tuned checkpoint (one-line user errors)."""
    from unite import config as config_mod
    from unite.errors import UserError
    from unite.modality import is_image

    ckpt_cfg = config_mod.from_dict(config_mod.upgrade_saved(source["config"]))
    if not is_image(ckpt_cfg):
        raise UserError(f"{ckpt_path}: {ckpt_cfg.data.kind} model: {NOT_APPLICABLE_REASON}")
    check_same_model(ckpt_cfg, cfg)
    if not (cfg.finetune.epochs or cfg.finetune.steps):
        raise UserError("finetune.epochs and finetune.steps are both 0: nothing to fine-tune "
                        "(set one, or switch the workflow's `finetune` off for this experiment)")
    if (source.get("meta") or {}).get("fine_tuned"):
        raise UserError(f"{ckpt_path} is already fine-tuned; start from the jointly trained "
                        "checkpoint")


def _restore(state_path: Path, cfg, ckpt_path: Path, source_step: int, env, decoder, ema, disc,
             optimizers, disc_opt) -> int:
    """Load the run folder's state (decoder, its EMA, discriminator, optimizers, per-rank RNG)
    after checking it continues this very run; returns the step to continue from."""
    from unite import checkpoint
    from unite.config import FINETUNE_RESUMABLE, RESUMABLE_CHANGES
    from unite.errors import UserError
    from unite.resume import check_resumable, restore_rng

    saved = checkpoint.read(state_path, required=STATE_KEYS)
    allowed = tuple(k for k in RESUMABLE_CHANGES if not k.startswith("finetune."))
    check_resumable(saved["config"], cfg, state_path, allowed=allowed + FINETUNE_RESUMABLE)
    if saved.get("source_step") != source_step:
        raise UserError(f"{state_path} fine-tunes the step-{saved.get('source_step')} "
                        f"checkpoint, {ckpt_path} is step {source_step}; use a new --run")
    decoder.load_state_dict(saved["decoder"])
    ema.load_state_dict(saved["decoder_ema"])
    disc.load_state_dict(saved["discriminator"])
    for opt, state in zip(optimizers, saved["optimizers"], strict=True):
        opt.load_state_dict(state)
    disc_opt.load_state_dict(saved["disc_optimizer"])
    restore_rng(saved["rng"], env, env.device)
    return int(saved["step"])


@dataclass
class _GanParts:
    """What one fine-tuning micro-step touches (``*_wrapped``: the DDP wrappers, or the
    modules themselves on one process)."""

    model: nn.Module
    disc: nn.Module
    disc_params: list
    g_wrapped: nn.Module
    d_wrapped: nn.Module
    recon_loss: nn.Module
    head_weight: torch.Tensor
    autocast: object
    recon_noise: object  # objective.add_recon_noise with finetune.recon_noise, else None


def _micro_step(gan: _GanParts, cfg, x: torch.Tensor, update_g: bool, add) -> None:
    """One micro-batch: the decoder's backward (recon + weighted adversarial loss) once the
    discriminator warm-up is over, then the discriminator's on real vs detached
    reconstructions; ``add(key, value)`` collects the logged values."""
    ft, autocast = cfg.finetune, gan.autocast
    with torch.no_grad(), autocast():
        z0 = gan.model.encode(x)
    z_in = gan.recon_noise(z0, cfg) if gan.recon_noise is not None else z0
    if update_g:
        for p in gan.disc_params:
            p.requires_grad_(False)
        with autocast():
            x_hat = gan.g_wrapped(z_in)
            recon, parts = gan.recon_loss(x_hat, x)
            adv = generator_loss(ft.gan_loss, gan.disc(x_hat).float())
        # one backward through the discriminator: d adv / d x_hat, then a surrogate with the
        # same decoder gradients as adv
        (grad_x,) = torch.autograd.grad(adv, x_hat)
        adv_surrogate = (x_hat * grad_x.detach()).sum()
        weight = ft.disc_weight * (adaptive_weight(
            recon, adv_surrogate, gan.head_weight, ft.max_adaptive_weight)
            if ft.adaptive_weight else 1.0)
        ((recon + weight * adv_surrogate) / ft.grad_accum).backward()
        for p in gan.disc_params:
            p.requires_grad_(True)
        add("g_adv", adv)
        add("adv_weight", weight)
    else:
        with torch.no_grad(), autocast():
            x_hat = gan.model.decoder(z_in)
            recon, parts = gan.recon_loss(x_hat, x)
    add("recon", recon)
    for k, v in parts.items():
        add(k, v)
    with autocast():
        logits = gan.d_wrapped(torch.cat([x, x_hat.detach().to(x.dtype)])).float()
        real, fake = logits.split(x.shape[0])
        d_loss = discriminator_loss(ft.gan_loss, real, fake)
    (d_loss / ft.grad_accum).backward()
    add("d_loss", d_loss)
    add("d_real", real.mean())
    add("d_fake", fake.mean())


def finetune_seed(seed: int, rank: int) -> int:
    """A per-rank stream for fine-tuning noise, distinct from training's streams."""
    return int(np.random.SeedSequence([seed, rank, 2]).generate_state(1)[0])


def _plot(metrics_path: Path, png: Path, name: str) -> None:
    """Loss curves of the run (recon, generator/discriminator losses, adaptive weight, val)."""
    from unite.analysis.curves import plot_curves, read_metrics, series

    if metrics_path.exists():
        records, _ = read_metrics(metrics_path)
        plot_curves(series(records), f"{name}: GAN decoder fine-tuning", png)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="jointly trained checkpoint")
    parser.add_argument("--out", required=True, help="output checkpoint (fine-tuned decoder)")
    parser.add_argument("--run", default=None,
                        help="run folder for resumable state, metrics and the loss-curve figure "
                        "(default: <out without suffix>_run)")
    parser.add_argument("--config", help="config with the 'finetune' section to use (default: "
                        "the checkpoint's own config); its model must be the checkpoint's")
    add_set(parser, "finetune.steps=200")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (0 = torch's default)")


def run(args: argparse.Namespace) -> None:
    from unite import checkpoint, config

    source = checkpoint.read(args.ckpt)
    if args.config:
        cfg = config.load(args.config, args.set)
    else:
        cfg = config.from_dict(config.upgrade_saved(source["config"]), args.set)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = finetune(cfg, args.ckpt, args.out, args.run, device=args.device,
                      progress=not args.no_progress, source=source)
    if result["status"] == "interrupted":
        sys.exit(128 + result["signal"])
