"""The plain, obviously-correct block maths (the implementation before the CPU speed work).

``unite.models.blocks`` computes the same functions with fewer passes over memory; the
equivalence test swaps these forwards in with ``use_reference_blocks`` and compares the loss
and every gradient of a training step.
"""

import contextlib

import torch
import torch.nn.functional as F

from unite.models import blocks


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def apply_rope(x, cos, sin):
    """Rotate pairs (x[..., :half], x[..., half:]) of a (B, H, N, D) tensor."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def attention(self, x, rope=None):
    b, n, d = x.shape
    q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k = self.q_norm(q), self.k_norm(k)
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    out = F.scaled_dot_product_attention(q, k, v)
    return self.proj(out.transpose(1, 2).reshape(b, n, d))


def ge_block(self, x, c, rope=None):
    sh1, sc1, g1, sh2, sc2, g2 = self.adaLN(c).chunk(6, dim=-1)
    x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), sh1, sc1), rope)
    x = x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), sh2, sc2))
    return self.norm_out(x)


def vit_block(self, x, rope=None):
    x = x + self.attn(self.norm1(x), rope)
    return x + self.mlp(self.norm2(x))


def final_layer(self, x, c):
    shift, scale = self.adaLN(c).chunk(2, dim=-1)
    return self.linear(modulate(self.norm(x), shift, scale))


@contextlib.contextmanager
def use_reference_blocks():
    """Swap the plain forwards into the block classes for the duration of the context."""
    swaps = {
        blocks.Attention: attention,
        blocks.GEBlock: ge_block,
        blocks.ViTBlock: vit_block,
        blocks.FinalLayer: final_layer,
    }
    saved = {cls: cls.forward for cls in swaps}
    try:
        for cls, fn in swaps.items():
            cls.forward = fn
        yield
    finally:
        for cls, fn in saved.items():
            cls.forward = fn
