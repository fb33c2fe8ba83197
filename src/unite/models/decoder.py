"""Image side of the model: patch embedding (GE input) and the ViT decoder back to pixels."""

from __future__ import annotations

import torch
from torch import nn

from unite.models.blocks import ViTBlock, sincos_2d
from unite.models.checkpointing import run_block
from unite.models.kernels import Linear


class PatchEmbed(nn.Module):
    """Conv2d(3 -> width, patch, stride patch) plus fixed 2D sin-cos positions.

    (The authors' learned patch positions stay at zero, a defect; fixed positions avoid it.)"""

    def __init__(self, image_size: int, patch_size: int, width: int, channels: int = 3):
        super().__init__()
        self.grid = image_size // patch_size
        self.proj = nn.Conv2d(channels, width, patch_size, stride=patch_size)
        self.register_buffer("pos", sincos_2d(width, self.grid)[None], persistent=False)

    def initialize_weights(self) -> None:
        w = self.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2) + self.pos.to(x.dtype)


class ImageDecoder(nn.Module):
    """ViT decoder: one register per patch -> pixels in [-1, 1] via an unpatchify head."""

    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        latent_dim: int,
        depth: int,
        width: int,
        heads: int,
        mlp_ratio: float = 4.0,
        channels: int = 3,
        grad_checkpointing: str | None = None,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.channels = channels
        self.grad_checkpointing = grad_checkpointing  # None | "full" | "selective"
        self.latent_in = nn.Linear(latent_dim, width)
        self.register_buffer("pos", sincos_2d(width, self.grid)[None], persistent=False)
        self.blocks = nn.ModuleList(ViTBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = Linear(width, patch_size * patch_size * channels)
        self.apply(_xavier)

    def features(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Per-block token features (used by the GAN fine-tuning and analyses)."""
        x = self.latent_in(z) + self.pos.to(z.dtype)
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.latent_in(z) + self.pos.to(z.dtype)
        for block in self.blocks:
            x = run_block(block, self.grad_checkpointing, x)
        return self.unpatchify(self.head(self.norm(x)))

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        b, p, g, c = x.shape[0], self.patch_size, self.grid, self.channels
        x = x.view(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, g * p, g * p)


def _xavier(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
