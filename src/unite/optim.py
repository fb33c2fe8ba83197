"""Optimisers, learning-rate schedule and EMA of the joint training (REFERENCE section 2).

Parameter split: Muon (momentum 0.95, ``adjust_lr_fn="match_rms_adamw"`` so that it can share
the AdamW learning rate) for the 2-D weight matrices inside transformer blocks (attention,
MLP and adaLN linears of the GE and decoder bodies); AdamW (0.9, 0.999) for everything else:
patch/latent/time/class embeddings, the register embedding, final layers, biases and norms.

The schedule is counted in *optimizer* steps: gradient accumulation does not stretch it
(the authors' code counted micro-batches, REFERENCE section 8).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from unite.config import Config
from unite.errors import UserError


def is_muon_param(name: str, p: torch.Tensor) -> bool:
    """A 2-D weight matrix inside a transformer block (``...blocks.<i>...``)."""
    return p.ndim == 2 and ".blocks." in f".{name}"


def split_params(model: nn.Module) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """-> (muon, adamw) lists of (name, param); shared parameters appear once."""
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (muon if is_muon_param(name, p) else adamw).append((name, p))
    return muon, adamw


def build_optimizers(model: nn.Module, cfg: Config) -> list[torch.optim.Optimizer]:
    """[Muon, AdamW] (``train.muon``) or [AdamW] for every parameter."""
    t = cfg.train
    muon, adamw = split_params(model)
    if not t.muon:
        adamw, muon = muon + adamw, []
    optimizers: list[torch.optim.Optimizer] = []
    if muon:
        if not hasattr(torch.optim, "Muon"):
            raise UserError(
                f"train.muon=true needs torch.optim.Muon (PyTorch >= 2.9; this is {torch.__version__}); "
                "upgrade PyTorch or set train.muon=false (AdamW for every parameter)"
            )
        optimizers.append(
            torch.optim.Muon(
                [p for _, p in muon],
                lr=t.lr,
                weight_decay=t.weight_decay,
                momentum=0.95,
                adjust_lr_fn="match_rms_adamw",
            )
        )
    optimizers.append(adamw_for([p for _, p in adamw], lr=t.lr, eps=t.adam_eps,
                                weight_decay=t.weight_decay))
    return optimizers


def adamw_for(params: list[torch.Tensor], *, lr: float, weight_decay: float,
              eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW (0.9, 0.999) with the fused kernel where the parameters allow it (floating-point
    tensors on CPU or CUDA): one pass per parameter instead of a dozen, same update rule."""
    fused = bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=eps,
                             weight_decay=weight_decay, fused=fused or None)


def optimizer_step(optimizers: list[torch.optim.Optimizer], params: list[torch.Tensor],
                   grad_clip: float) -> torch.Tensor:
    """Clip the global gradient norm of ``params`` to ``grad_clip`` (<= 0: no clipping), step
    every optimizer and clear the gradients. Returns the norm before clipping.

    Shared by the training loop, the benchmarks and fine-tuning. On CPU the rescaling pass is
    skipped when the norm is already within the limit (the factor would be exactly 1)."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if grad_clip > 0 and grads:
        if norm.device.type != "cpu" or float(norm) + 1e-6 > grad_clip:
            torch.nn.utils.clip_grads_with_norm_(params, grad_clip, norm)
    for opt in optimizers:
        opt.step()
        opt.zero_grad(set_to_none=True)
    return norm


class WarmupCosine:
    """Linear warm-up to ``lr`` over ``warmup`` optimizer steps, ``hold`` steps at ``lr``, then a
    cosine to ``min_lr`` over ``decay`` steps (0 = until ``total``), then flat at ``min_lr``.

    ``hold = decay = 0`` is the paper's warm-up + cosine over the whole run. The released code's
    schedule is warm-up 20 epochs, hold 10, cosine over 20 to half the peak, then flat: with
    the peak scaled by batch/384 its LR never falls below 1.33e-4 at batch 1024.
    """

    def __init__(self, lr: float, min_lr: float, warmup: int, total: int, hold: int = 0,
                 decay: int = 0):
        self.lr, self.min_lr, self.warmup, self.total = lr, min_lr, warmup, total
        self.hold, self.decay = hold, decay

    @classmethod
    def from_config(cls, cfg: Config) -> WarmupCosine:
        t = cfg.train
        return cls(t.lr, t.min_lr, t.warmup_steps, t.steps, t.lr_hold_steps, t.lr_decay_steps)

    def lr_at(self, step: int) -> float:
        """LR used by optimizer step ``step`` (0-based)."""
        if self.warmup > 0 and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        start = self.warmup + self.hold
        if step < start:
            return self.lr
        span = max(1, self.decay if self.decay > 0 else self.total - start)
        progress = min(1.0, (step - start) / span)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizers: list[torch.optim.Optimizer], step: int) -> float:
        lr = self.lr_at(step)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"lr": self.lr, "min_lr": self.min_lr, "warmup": self.warmup, "total": self.total,
                "hold": self.hold, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        # the schedule is a pure function of the step and the config; the config wins so that
        # an extended run (train.steps raised on resume) follows its new horizon
        pass


class EMA:
    """Exponential moving average of every parameter (buffers copied); evaluation uses it."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
