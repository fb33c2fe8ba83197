"""Named sizes (like DiT's model table) and ``build_model(cfg)``.

GE sizes follow REFERENCE section 1 / paper Table 7; decoders are ViTs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from unite import kinds
from unite.config import Config
from unite.models.checkpointing import plan_for
from unite.models.decoder import ImageDecoder, PatchEmbed
from unite.models.generative_encoder import GenerativeEncoder
from unite.models.unite_model import UNITE


@dataclass(frozen=True)
class Size:
    depth: int
    width: int
    heads: int


GE_SIZES: dict[str, Size] = {
    "tiny": Size(4, 128, 4),
    "S": Size(12, 384, 6),
    "B": Size(12, 768, 12),
    "L": Size(24, 1024, 16),
    "XL": Size(28, 1152, 16),
}

DECODER_SIZES: dict[str, Size] = {
    "tiny": Size(3, 128, 4),
    "S": Size(6, 384, 6),
    "B": Size(12, 768, 12),
}

def resolve(table: dict[str, Size], name: str, depth: int, width: int, heads: int) -> Size:
    base = table[name]
    return Size(depth or base.depth, width or base.width, heads or base.heads)


def ge_size(cfg: Config) -> Size:
    m = cfg.model
    return resolve(GE_SIZES, m.size, m.depth, m.width, m.heads)


def decoder_size(cfg: Config) -> Size:
    m = cfg.model
    return resolve(DECODER_SIZES, m.decoder_size, m.decoder_depth, m.decoder_width, m.decoder_heads)


def _input_and_decoder(cfg: Config, width: int) -> tuple[nn.Module, nn.Module]:
    m, d = cfg.model, cfg.data
    dec = decoder_size(cfg)
    if kinds.is_images(d.kind):
        embed = PatchEmbed(d.image_size, m.patch_size, width)
        decoder = ImageDecoder(
            image_size=d.image_size,
            patch_size=m.patch_size,
            latent_dim=m.latent_dim,
            depth=dec.depth,
            width=dec.width,
            heads=dec.heads,
            grad_checkpointing=plan_for(cfg).decode,
        )
        return embed, decoder
    if kinds.is_atoms(d.kind):
        from unite.models.atoms import build_atom_modules

        return build_atom_modules(cfg, width, dec)
    raise ValueError(f"unknown data kind {d.kind}")


def build_ge(cfg: Config, input_embed: nn.Module | None) -> GenerativeEncoder:
    size, m = ge_size(cfg), cfg.model
    return GenerativeEncoder(
        input_embed,
        depth=size.depth,
        width=size.width,
        heads=size.heads,
        num_registers=m.num_registers,
        latent_dim=m.latent_dim,
        num_classes=cfg.data.num_classes,
        in_context_tokens=m.in_context_tokens,
        in_context_start=m.in_context_start,
        time_embed=m.time_embed,
    )


def build_model(cfg: Config) -> UNITE:
    """The full model for a config; call under ``torch.device('meta')`` to count parameters."""
    embed, decoder = _input_and_decoder(cfg, ge_size(cfg).width)
    encoder = build_ge(cfg, embed)
    # the ablation's denoiser never sees inputs, so it gets no input embedder
    denoiser = None if cfg.model.weight_sharing else build_ge(cfg, None)
    return UNITE(encoder, decoder, denoiser)
