"""Speed switches around the model that leave the training maths alone.

* ``configure(cfg, device)``: on CPU, glibc keeps freed memory in the heap instead of handing
  it back to the kernel after every step (``keep_freed_memory``): otherwise each step's
  activations are faulted in again page by page, ~0.4 s of kernel time per UNITE-B step in
  these VMs (``bench/train_step.py``; peak RSS unchanged). On CUDA with bf16 autocast (``train.precision`` auto/bf16), fp32
  matmuls and convolutions that stay outside autocast may use TF32 (the run already accepts
  bf16 matmuls). With ``train.precision: fp32`` nothing changes: fp32 stays IEEE fp32.
  Attention always goes through ``scaled_dot_product_attention``, which picks the flash
  kernel on CUDA for bf16 inputs by itself.
* ``compile_model(cfg, model)``: with ``train.compile: true``, ``torch.compile`` each GE and
  decoder block in place (same module tree and state dict, so checkpoints do not change).
  Blocks are the unit because all blocks of a network share one compiled graph, so the first
  step compiles a handful of graphs (one per sequence length), not the whole model. Call it
  after the EMA copy is made: the EMA module stays eager (it is only evaluated).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys

import torch
from torch import nn

from unite.config import Config


def uses_bf16(cfg: Config, device: torch.device) -> bool:
    p = cfg.train.precision
    return p == "bf16" or (p == "auto" and device.type == "cuda")


def autocast_for(cfg: Config, device: torch.device):
    """The training precision policy (``train.precision``) as a context factory: bf16
    autocast where :func:`uses_bf16`, else a no-op; used by training, fine-tuning, the bench."""
    return _bf16_context(device) if uses_bf16(cfg, device) else contextlib.nullcontext


def inference_uses_bf16(cfg: Config, device: torch.device) -> bool:
    """Inference (sampling, reconstruction, decoding) has its own policy,
    ``sample.precision``: bf16 only on CUDA and only when asked (default fp32, as the
    released code samples), whatever the run was trained in."""
    return device.type == "cuda" and cfg.sample.precision == "bf16"


def inference_autocast_for(cfg: Config, device: torch.device):
    """:func:`inference_uses_bf16` as a context factory, like :func:`autocast_for`."""
    return _bf16_context(device) if inference_uses_bf16(cfg, device) else contextlib.nullcontext


def _bf16_context(device: torch.device):
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)


# glibc mallopt parameters
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse: blocks up to 32 MiB (its maximum) come from
    the heap, and the heap is trimmed only when more than 1 GiB at its top is free. Returns
    False where there is no glibc (nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


def configure(cfg: Config, device: torch.device) -> None:
    """Process-wide settings for a training run on ``device``."""
    if device.type == "cpu":
        keep_freed_memory()
    if device.type == "cuda" and uses_bf16(cfg, device):
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The GE blocks (both networks when weights are not shared) and the decoder blocks."""
    found = []
    for net in (model.encoder, getattr(model, "separate_denoiser", None), model.decoder):
        if net is not None and hasattr(net, "blocks"):
            found.extend(net.blocks)
    return found


def compile_model(cfg: Config, model: nn.Module, **compile_kwargs) -> int:
    """``torch.compile`` the transformer blocks in place when ``train.compile``; returns how
    many blocks were compiled (0 when the switch is off)."""
    if not cfg.train.compile:
        return 0
    blocks = transformer_blocks(model)
    for block in blocks:
        block.compile(**compile_kwargs)
    return len(blocks)
