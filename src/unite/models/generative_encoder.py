"""The Generative Encoder (GE): one network that is both the tokenizer and the latent denoiser.

Tokenization mode: K latent registers, initialised as N(0, I) noise, are concatenated with
input tokens (image patches or atoms); class = null, t ~ U[0, 0.01) (the pure-noise end).
The updated registers are the clean latent z0.

Denoising mode: the registers start as the noisy latent z_t, no input tokens, the real class
and the sampled t; the output is the x-prediction of z0.

Every latent the GE emits passes through the same final LayerNorm(latent_dim) with a
learnable affine, so tokenizer output and denoiser prediction live in one space.
"""

from __future__ import annotations

import torch
from torch import nn

from unite.models.blocks import FinalLayer, GEBlock, LabelEmbedder, rope_tables
from unite.models.checkpointing import run_block
from unite.models.time_embed import build_time_embedder

TOKENIZE_T_MAX = 0.01


class GenerativeEncoder(nn.Module):
    """Registers (+ input tokens) -> latent registers, conditioned on time and class."""

    def __init__(
        self,
        input_embed: nn.Module | None,
        *,
        depth: int,
        width: int,
        heads: int,
        num_registers: int,
        latent_dim: int,
        num_classes: int,
        mlp_ratio: float = 4.0,
        in_context_tokens: int = 0,
        in_context_start: int = 4,
        time_embed: str = "fourier",
    ):
        super().__init__()
        self.input_embed = input_embed  # None: a denoise-only network (``separate`` ablation)
        self.num_registers = num_registers
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.width = width
        self.heads = heads
        self.in_context_tokens = in_context_tokens
        self.in_context_start = min(in_context_start, depth)

        self.register_in = nn.Linear(latent_dim, width)
        self.register_embed = nn.Parameter(torch.zeros(1, num_registers, width))
        self.t_embed = build_time_embedder(time_embed, width)
        self.y_embed = LabelEmbedder(num_classes, width)
        if in_context_tokens:
            self.in_context_pos = nn.Parameter(torch.zeros(1, in_context_tokens, width))
        self.blocks = nn.ModuleList(GEBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.final = FinalLayer(width, latent_dim)
        self.latent_norm = nn.LayerNorm(latent_dim, elementwise_affine=True)
        self.initialize_weights()

    # -- initialisation -------------------------------------------------------------------
    def initialize_weights(self) -> None:
        """Xavier for linears, small normal for embeddings, zero adaLN gates (adaLN-Zero)."""

        def _basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic)
        nn.init.normal_(self.register_embed, std=0.02)
        nn.init.normal_(self.y_embed.table.weight, std=0.02)
        for lin in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        if self.in_context_tokens:
            nn.init.normal_(self.in_context_pos, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN[-1].weight)
            nn.init.zeros_(block.adaLN[-1].bias)
        nn.init.zeros_(self.final.adaLN[-1].weight)
        nn.init.zeros_(self.final.adaLN[-1].bias)
        # final.linear keeps its Xavier init: a zero output would sit at the singular point of
        # the LayerNorm that follows (gradient ~ 1/sqrt(eps)).
        if hasattr(self.input_embed, "initialize_weights"):
            self.input_embed.initialize_weights()

    # -- the two modes --------------------------------------------------------------------
    def null_labels(self, batch: int, device) -> torch.Tensor:
        return torch.full((batch,), self.num_classes, dtype=torch.long, device=device)

    def tokenize(self, x, *, noise: torch.Tensor | None = None, return_hidden: bool = False,
                 recompute: str | None = None):
        """Tokenization pass: input -> clean latent z0 (B, K, latent_dim).

        ``recompute``: activation checkpointing of the blocks (``unite.models.checkpointing``)."""
        if self.input_embed is None:
            raise RuntimeError("this GE was built without an input embedder (denoise-only)")
        tokens = self.input_embed(x)
        b = tokens.shape[0]
        if noise is None:
            noise = torch.randn(b, self.num_registers, self.latent_dim, device=tokens.device)
        t = torch.rand(b, device=tokens.device) * TOKENIZE_T_MAX
        return self.forward(noise, t, self.null_labels(b, tokens.device), tokens, return_hidden,
                            recompute)

    def denoise(self, z_t, t, y, *, return_hidden: bool = False, recompute: str | None = None):
        """Denoising pass: noisy latent z_t at time t (1 = clean) -> x-prediction of z0."""
        return self.forward(z_t, t, y, None, return_hidden, recompute)

    def forward(self, registers, t, y, tokens=None, return_hidden: bool = False,
                recompute: str | None = None):
        b, k, _ = registers.shape
        x = self.register_in(registers) + self.register_embed
        if tokens is not None:
            x = torch.cat([x, tokens.to(x.dtype)], dim=1)
        c = self.t_embed(t) + self.y_embed(y)
        positions = torch.arange(x.shape[1], device=x.device)
        rope = rope_tables(positions, self.width // self.heads)
        hidden = []
        n_ctx = 0
        for i, block in enumerate(self.blocks):
            if self.in_context_tokens and i == self.in_context_start:
                ctx = self.y_embed(y)[:, None, :] + self.in_context_pos
                x = torch.cat([ctx.to(x.dtype), x], dim=1)
                n_ctx = self.in_context_tokens
                positions = torch.cat(
                    [torch.full((n_ctx,), -1, device=x.device), positions]
                )
                rope = rope_tables(positions, self.width // self.heads)
            x = run_block(block, recompute, x, c, rope)
            if return_hidden:
                hidden.append(x[:, n_ctx : n_ctx + k])
        z = self.latent_norm(self.final(x[:, n_ctx : n_ctx + k], c))
        return (z, hidden) if return_hidden else z
