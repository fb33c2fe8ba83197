"""The joint objective of REFERENCE section 2: one forward = both passes of one micro-batch.

With ``flow.py`` (interpolation, time sampling, the flow loss) and ``losses.py`` (the
reconstruction loss) this module is the paper's method; ``unite.training`` only runs it.

1. tokenization pass ``z0 = GE(x)``;
2. reconstruction ``x_hat = D(noisy(z0))`` with ``train.recon_noise`` (:func:`add_recon_noise`:
   gaussian ``z0 + sigma*eps`` as in the paper; ``interp`` = the authors' code; ``none``), loss
   L1 + LPIPS;
3. denoising: ``z0_sg = stopgrad(z0)`` (``train.stop_gradient``), F = ``flow_steps_per_recon``
   independent draws (eps, t) with ``z_t = t*z0_sg + (1-t)*eps``, run ``flow_chunk`` draws per
   GE forward (:func:`chunk_sizes`; draws concatenated along the batch), class labels dropped
   to the null class with probability ``label_dropout`` (:func:`drop_labels`);
4. ``loss = L_recon + w(step) * L_flow`` (:func:`flow_weight_at`: 0 before
   ``train.flow_start``, then a linear ramp to ``train.flow_weight``) and ONE backward of that
   total (the whole step is a single graph; ``flow_chunk`` bounds the size of each forward,
   not the maths).
"""

from __future__ import annotations

import torch
from torch import nn

from unite.config import Config
from unite.flow import flow_loss, interpolate, sample_time
from unite.losses import ReconLoss
from unite.models.checkpointing import plan_for


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
