"""Flow-matching pieces of the denoising pass (REFERENCE section 2).

Time convention everywhere: t = 1 is the clean latent, t = 0 pure noise, and
``z_t = t * z0 + (1 - t) * eps``.

Time sampling: t0 ~ logit-normal(0, 1), then the shift ``t = a*t0 / (1 + (a - 1)*t0)``;
a < 1 moves mass toward the noise end (a = 0.5 in the paper), a = 1 is the identity.
All randomness comes from the seeded global RNG or an explicit ``torch.Generator`` (the
authors' code drew timesteps from an unseeded source, REFERENCE section 8).

Flow loss reduction, for both forms: the squared error is averaged over the batch,
registers and channels of *one draw*, and the F per-draw means are summed:
``L_flow = sum_f mean_{b,k,c} (pred_f - target_f)^2``. This is the authors' reduction
(velocity form); the paper's x-prediction form uses the same reduction so that switching
``train.flow_loss`` changes only what is compared, not the scale convention over F.
"""

from __future__ import annotations

import torch


def shift_time(t0: torch.Tensor, a: float) -> torch.Tensor:
    """Shift a time in [0, 1]: ``a*t0 / (1 + (a-1)*t0)``; monotone, fixes 0 and 1."""
    if a == 1.0:
        return t0
    return a * t0 / (1.0 + (a - 1.0) * t0)


def sample_time(
    n: int,
    a: float,
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n times from the shifted logit-normal(0, 1) schedule (seeded: global RNG or ``generator``)."""
    t0 = torch.sigmoid(torch.randn(n, device=device, generator=generator))
    return shift_time(t0, a)


def interpolate(z0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``z_t = t * z0 + (1 - t) * eps`` with t of shape (B,) broadcast over the latent."""
    t = t.view(-1, *([1] * (z0.dim() - 1))).to(z0.dtype)
    return t * z0 + (1.0 - t) * eps


def velocity(z0: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor, clamp: float) -> torch.Tensor:
    """Velocity implied by an x-prediction: ``(z0 - z_t) / max(1 - t, clamp)``."""
    denom = (1.0 - t).clamp(min=clamp).view(-1, *([1] * (z0.dim() - 1))).to(z0.dtype)
    return (z0 - z_t) / denom


def flow_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    z_t: torch.Tensor,
    t: torch.Tensor,
    draws: int,
    *,
    kind: str = "x",
    clamp: float = 0.05,
) -> torch.Tensor:
    """Flow loss of ``draws`` independent draws stacked along the batch (draw-major).

    pred: the GE's x-prediction z0_hat; target: z0 (stop-gradient or not, caller's choice).
    kind "x": MSE(z0_hat, z0) (paper). kind "velocity": MSE between the velocities implied by
    the prediction and by the target, each ``(z - z_t)/max(1 - t, clamp)`` (authors' code).
    Returns ``sum over draws of the per-draw mean squared error`` (see module docstring).
    """
    if kind == "x":
        err = pred.float() - target.float()
    elif kind == "velocity":
        err = velocity(pred.float(), z_t.float(), t, clamp) - velocity(
            target.float(), z_t.float(), t, clamp
        )
    else:
        raise ValueError(f"unknown flow loss {kind!r}")
    per_draw = err.pow(2).reshape(draws, -1).mean(dim=1)
    return per_draw.sum()
