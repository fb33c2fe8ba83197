"""Transformer pieces shared by the Generative Encoder and the decoders.

GE blocks follow the authors' design (REFERENCE section 1): pre-norm with RMSNorm,
adaLN-Zero modulation from the conditioning vector, QK-norm, SwiGLU MLP, rotary positions
and an extra norm at the end of each block. Decoder blocks are plain pre-LN ViT blocks.
Attention always goes through ``scaled_dot_product_attention``.

The maths is the plain one (``tests/reference_blocks.py`` keeps that version and
``tests/test_fast_step_equivalence.py`` pins this one to it); the code is arranged for speed:
linears and norms from ``unite.models.kernels`` (oneDNN GEMMs on CPU, RMSNorm with a
hand-written backward), modulation and gated residuals as single ``addcmul`` kernels, QK-norm
and RoPE applied to q and k together, and q/k/v handed to SDPA as strided views of the qkv
projection (no permute copies; the CPU kernel writes its output in the (B, N, H, D) layout,
so merging the heads is free as well).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unite.models.kernels import Linear, rms_norm


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x * (1 + scale) + shift`` per sample, as one kernel."""
    return torch.addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1))


def rope_tables(positions: torch.Tensor, head_dim: int, base: float = 10000.0):
    """cos/sin tables (N, head_dim/2) for 1D rotary embedding at integer positions.

    A negative position marks a token that should not be rotated (angle 0)."""
    half = head_dim // 2
    freqs = base ** (-torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.float().clamp(min=0)[:, None] * freqs[None, :]
    angles = torch.where(positions[:, None] < 0, torch.zeros_like(angles), angles)
    return angles.cos(), angles.sin()


def rotation_coefficients(rope, weight: torch.Tensor | None, dtype: torch.dtype):
    """(p, r) with ``RoPE(n * w) = n * p + roll(n, D/2) * r``, shaped (N, groups, 1, D).

    RoPE rotates the pairs (n[:D/2], n[D/2:]): out = [n1 c - n2 s, n1 s + n2 c]. With the
    QK-norm weight w folded in (one row per group, here q and k), p = [w1 c, w2 c] and
    r = [-w2 s, w1 s]; the tables are tiny, so folding costs nothing and saves two passes
    over q and k."""
    cos, sin = rope
    c = torch.cat([cos, cos], dim=-1)[:, None, None, :]
    s = torch.cat([-sin, sin], dim=-1)[:, None, None, :]
    if weight is None:
        return c.to(dtype), s.to(dtype)
    w = weight[None, :, None, :]
    half = weight.shape[-1] // 2
    return (c * w).to(dtype), (s * torch.roll(w, half, dims=-1)).to(dtype)


class Attention(nn.Module):
    """Multi-head self-attention with optional QK-norm and rotary positions."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = True, bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qk_norm = qk_norm
        self.qkv = Linear(dim, 3 * dim, bias=bias)
        self.proj = Linear(dim, dim, bias=bias)
        # modules kept for their weights (state dict, weight-entropy grouping); the forward
        # normalises q and k together with rms_norm
        self.q_norm = nn.RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim) if qk_norm else nn.Identity()

    def _normalise_and_rotate(self, qk: torch.Tensor, rope) -> torch.Tensor:
        """QK-norm and RoPE on q and k stacked as (B, N, 2, H, D)."""
        weight = None
        if self.qk_norm:
            qk = rms_norm(qk, None, self.q_norm.eps)
            weight = torch.stack([self.q_norm.weight, self.k_norm.weight])  # (2, D)
        if rope is None:
            return qk * weight[:, None, :].to(qk.dtype)
        p, r = rotation_coefficients(rope, weight, qk.dtype)
        return torch.addcmul(qk * p, torch.roll(qk, self.head_dim // 2, dims=-1), r)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None):
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, self.head_dim)
        if self.qk_norm or rope is not None:
            q, k = self._normalise_and_rotate(qkv[:, :, :2], rope).unbind(2)
        else:
            q, k = qkv[:, :, 0], qkv[:, :, 1]
        v = qkv[:, :, 2]
        # (B, N, H, D) views -> (B, H, N, D) without copies
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class SwiGLU(nn.Module):
    """Gated MLP; hidden width 2/3 * ratio * dim keeps the parameter count of a ratio-4 MLP."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(2 * mlp_ratio * dim / 3)
        self.w12 = Linear(dim, 2 * hidden)
        self.w3 = Linear(hidden, dim)

    def forward(self, x):
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class GEBlock(nn.Module):
    """adaLN-Zero transformer block of the Generative Encoder."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, elementwise_affine=False)
        self.attn = Attention(dim, heads, qk_norm=True)
        self.norm2 = nn.RMSNorm(dim, elementwise_affine=False)
        self.mlp = SwiGLU(dim, mlp_ratio)
        self.norm_out = nn.RMSNorm(dim)  # the extra per-block output norm
        self.adaLN = nn.Sequential(nn.SiLU(), Linear(dim, 6 * dim))

    def forward(self, x, c, rope=None):
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN(c).chunk(6, dim=-1)
        h = modulate(rms_norm(x, None, self.norm1.eps), sh1, sc1)
        x = torch.addcmul(x, g1.unsqueeze(1), self.attn(h, rope))  # x + g1 * attn
        h = modulate(rms_norm(x, None, self.norm2.eps), sh2, sc2)
        x = torch.addcmul(x, g2.unsqueeze(1), self.mlp(h))
        return rms_norm(x, self.norm_out.weight, self.norm_out.eps)


class ViTBlock(nn.Module):
    """Pre-LN ViT block (decoder)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, qk_norm=False)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(Linear(dim, hidden), nn.GELU(), Linear(hidden, dim))

    def forward(self, x, rope=None):
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class TimestepEmbedder(nn.Module):
    """Fourier features of t in [0, 1] followed by a two-layer MLP."""

    def __init__(self, dim: int, freq_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(
            -math.log(self.max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
        )
        args = (t.float() * 1000.0)[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    """Class embedding with one extra 'null' row (index = num_classes) for classifier-free guidance."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.table(y)


class FinalLayer(nn.Module):
    """adaLN modulation + linear projection to the latent dimension (registers only)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.RMSNorm(dim, elementwise_affine=False)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x, c):
        shift, scale = self.adaLN(c).chunk(2, dim=-1)
        return self.linear(modulate(rms_norm(x, None, self.norm.eps), shift, scale))


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2D sin-cos position table (grid*grid, dim)."""
    if dim % 4:
        raise ValueError("sin-cos 2D positions need a width divisible by 4")
    coords = torch.arange(grid, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    parts = []
    for pos in (yy.flatten(), xx.flatten()):
        out = pos[:, None] * omega[None]
        parts += [out.sin(), out.cos()]
    return torch.cat(parts, dim=1)
