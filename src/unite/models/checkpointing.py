"""Activation checkpointing: which passes of a training step recompute their activations.

``model.grad_checkpointing`` names a policy; ``plan(cfg)`` turns it into one setting per pass
(tokenization, denoising, decoder), each ``None`` (keep activations), ``"full"`` (keep only
each block's input, rerun the block in backward) or ``"selective"`` (keep the matmul and
attention outputs, rerun only the cheap pointwise ops in backward).

* ``none``: nothing is recomputed (fastest; most memory).
* ``all``: every block of every pass is recomputed (the old ``true``; least memory, one
  extra forward of everything).
* ``auto``: the authors' rule, chosen by F = ``train.flow_steps_per_recon``: nothing when
  F <= 4; with more draws the denoising passes, whose activations grow with F, recompute in
  full. The tokenization pass and the decoder keep their activations.
* ``selective``: as ``auto``, but the denoising passes recompute only the pointwise ops, for
  GPUs where the memory of the matmul outputs is affordable.

Recomputation never changes the maths, only memory and time (the equivalence test checks
gradients under every policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

POLICIES = ("none", "all", "auto", "selective")
# the authors' code checkpoints the denoising passes only when F > 4
AUTO_MIN_DRAWS = 5


@dataclass(frozen=True)
class Recompute:
    tokenize: str | None
    denoise: str | None
    decode: str | None


def plan(policy: str, flow_draws: int) -> Recompute:
    """Per-pass recompute setting for a policy and F draws per reconstruction."""
    if policy == "all":
        return Recompute("full", "full", "full")
    if policy in ("auto", "selective") and flow_draws >= AUTO_MIN_DRAWS:
        return Recompute(None, "full" if policy == "auto" else "selective", None)
    if policy not in POLICIES:
        raise ValueError(f"unknown checkpointing policy {policy!r}")
    return Recompute(None, None, None)


def plan_for(cfg) -> Recompute:
    return plan(cfg.model.grad_checkpointing, cfg.train.flow_steps_per_recon)


def _aten(*names: str) -> set:
    ops = set()
    for name in names:
        packet = getattr(torch.ops.aten, name, None)
        if packet is not None:
            ops.add(packet.default)
    return ops


# outputs worth keeping: everything that costs a matmul (the rest is cheap to redo)
SAVED_OPS = _aten(
    "mm", "addmm", "bmm", "baddbmm", "convolution",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
)
if hasattr(torch.ops, "mkldnn") and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
    SAVED_OPS.add(torch.ops.mkldnn._linear_pointwise.default)


def _save_matmuls(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_SAVE if op in SAVED_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def run_block(block, mode: str | None, *args):
    """``block(*args)``, recomputed in backward according to ``mode``."""
    if not mode or not block.training or not torch.is_grad_enabled():
        return block(*args)
    if mode == "selective":
        context = partial(create_selective_checkpoint_contexts, _save_matmuls)
        return checkpoint(block, *args, use_reentrant=False, context_fn=context)
    return checkpoint(block, *args, use_reentrant=False)
