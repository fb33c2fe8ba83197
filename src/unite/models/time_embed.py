"""Time embeddings of the Generative Encoder: t in [0, 1] -> a conditioning vector.

Two choices (``model.time_embed``):

* ``fourier`` (default; the authors' released code): ``[sin(2 pi W t), cos(2 pi W t)]`` with
  256 fixed frequencies ``W ~ N(0, 1)``, then a two-layer MLP. The frequencies are low, so the
  tokenization pass's ``t ~ U[0, 0.01)`` moves the features by a few percent at most: the
  tokenizer sees (almost) one time, the noise end of the denoiser's range.
* ``sinusoid`` (DiT's embedding, this project's first version): sin/cos of ``1000 t`` over
  periods up to 10^4. Its fastest features turn a full period between t = 0 and t = 0.01, so
  the tokenizer's jitter moves them as far as t = 0.1 does.

Both keep the MLP as ``mlp = Sequential(Linear, SiLU, Linear)`` so that the GE initialises
either in the same way.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from unite.models.blocks import TimestepEmbedder

TIME_EMBEDS = ("fourier", "sinusoid")


class FourierTimeEmbedder(nn.Module):
    """Gaussian Fourier features of t followed by a two-layer MLP.

    ``freqs`` is a persistent buffer: drawn once at construction (from the global RNG, which
    training seeds identically on every rank), saved with the weights, never trained.
    """

    def __init__(self, dim: int, num_freqs: int = 256, scale: float = 1.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_freqs) * scale)
        self.mlp = nn.Sequential(nn.Linear(2 * num_freqs, dim), nn.SiLU(), nn.Linear(dim, dim))

    def features(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B, 2 * num_freqs) in fp32, before the MLP."""
        angles = 2.0 * math.pi * t.float()[:, None] * self.freqs.float()[None]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(t).to(self.mlp[0].weight.dtype))


def build_time_embedder(kind: str, dim: int) -> nn.Module:
    if kind == "fourier":
        return FourierTimeEmbedder(dim)
    if kind == "sinusoid":
        return TimestepEmbedder(dim)
    raise ValueError(f"unknown time embedding {kind!r}; choose one of {', '.join(TIME_EMBEDS)}")
