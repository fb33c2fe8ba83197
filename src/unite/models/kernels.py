"""Faster kernels for the same maths: the matmuls and norms of the transformer blocks.

* ``linear``: on CPU in fp32, the forward and both backward matmuls of a linear layer go
  through oneDNN (``torch.ops.mkldnn._linear_pointwise``) instead of MKL's sgemm. On the AMD
  EPYC development machines oneDNN's fp32 GEMM runs about 1.2-1.4x faster at these shapes
  (``bench/matmul_backends.py``). It is still fp32 with fp32 accumulation: results differ
  from MKL's only in summation order. Anywhere else (CUDA, bf16 autocast, other dtypes) it
  is ``F.linear``, and so it is inside ``torch.compile`` (Inductor picks its own GEMMs).
* ``rms_norm``: RMSNorm with a hand-written backward, ``(g - n * mean(g * n)) * rstd``, which
  touches memory about half as often as the composite ``F.rms_norm`` on CPU.

``use_onednn(False)`` switches the linear back to ``F.linear`` (tests, benchmarks).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

# nn.RMSNorm's eps when none is given: machine epsilon of fp32, its compute type
RMS_EPS = torch.finfo(torch.float32).eps

_ONEDNN = {
    "enabled": torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
}


@contextlib.contextmanager
def use_onednn(enabled: bool):
    """Turn the oneDNN linear on or off inside the context (it stays off where unavailable)."""
    before = _ONEDNN["enabled"]
    _ONEDNN["enabled"] = enabled and torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_linear_pointwise"
    )
    try:
        yield
    finally:
        _ONEDNN["enabled"] = before


def _onednn_mm(a: torch.Tensor, b_t: torch.Tensor, bias: torch.Tensor | None = None):
    """``a @ b_t.T (+ bias)`` for 2-D fp32 CPU tensors (strided views are fine)."""
    return torch.ops.mkldnn._linear_pointwise(a, b_t, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        x2 = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x2, weight)
        ctx.has_bias = bias is not None
        out = _onednn_mm(x2, weight, bias)
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x2, weight = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _onednn_mm(g2, weight.t()).view(*g.shape[:-1], weight.shape[1])
        if ctx.needs_input_grad[1]:
            gw = _onednn_mm(g2.t(), x2.t())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """``F.linear`` with oneDNN GEMMs on CPU fp32 (see module docstring)."""
    if (
        _ONEDNN["enabled"]
        and not torch.compiler.is_compiling()  # Inductor lowers only frozen-weight oneDNN linears
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and x.numel() > 0
    ):
        return _OneDNNLinear.apply(x, weight, bias)
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) whose forward is ``kernels.linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class _RMSNormFn(torch.autograd.Function):
    """x / sqrt(mean(x^2) + eps) over the last dim, computed in fp32."""

    @staticmethod
    def forward(ctx, x, eps):
        xf = x.float()
        ms = torch.linalg.vector_norm(xf, dim=-1, keepdim=True).square_().div_(x.shape[-1])
        rstd = ms.add_(eps).rsqrt_()
        n = xf * rstd
        ctx.save_for_backward(n, rstd)
        return n.to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        n, rstd = ctx.saved_tensors
        gf = g.float()
        dot = (gf * n).mean(-1, keepdim=True)
        gx = torch.addcmul(gf, n, dot, value=-1.0).mul_(rstd)
        return gx.to(g.dtype), None


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float | None = None):
    """Same function as ``nn.RMSNorm`` (eps None = fp32 machine epsilon), output in x's dtype."""
    out = _RMSNormFn.apply(x, RMS_EPS if eps is None else eps)
    return out if weight is None else out * weight.to(out.dtype)
