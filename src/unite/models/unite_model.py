"""UNITE = Generative Encoder (tokenizer and denoiser, shared weights) + decoder.

With ``weight_sharing=False`` (the ablation) the tokenizer and the denoiser are two
independent GE networks, and everything else in the pipeline stays the same.
"""

from __future__ import annotations

import torch
from torch import nn

from unite.models.generative_encoder import GenerativeEncoder


class UNITE(nn.Module):
    """Holds the GE(s) and the decoder; the three verbs of the method are encode/denoise/decode."""

    def __init__(
        self,
        encoder: GenerativeEncoder,
        decoder: nn.Module,
        denoiser: GenerativeEncoder | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.separate_denoiser = denoiser  # None = shared weights (UNITE proper)

    @property
    def denoiser(self) -> GenerativeEncoder:
        return self.encoder if self.separate_denoiser is None else self.separate_denoiser

    @property
    def shared(self) -> bool:
        return self.separate_denoiser is None

    @property
    def num_classes(self) -> int:
        return self.encoder.num_classes

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self.encoder.num_registers, self.encoder.latent_dim

    def encode(self, x, **kw) -> torch.Tensor:
        return self.encoder.tokenize(x, **kw)

    def denoise(self, z_t, t, y, **kw) -> torch.Tensor:
        return self.denoiser.denoise(z_t, t, y, **kw)

    def decode(self, z):
        return self.decoder(z)
