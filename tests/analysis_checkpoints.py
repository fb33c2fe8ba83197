"""Tiny contract-shaped checkpoints for the analysis and finetune tests (not a test module)."""

from __future__ import annotations

import torch

from unite import config
from unite.checkpoint import save_atomic
from unite.models import build_model

TINY = {
    "name": "tiny-analysis",
    "data": {"kind": "digits", "image_size": 16},
    "model": {"depth": 2, "width": 32, "heads": 2, "decoder_depth": 1, "decoder_width": 32,
              "decoder_heads": 2, "patch_size": 4, "num_registers": 16, "latent_dim": 4},
}


def tiny_config(overrides: list[str] | None = None):
    return config.from_dict(TINY, overrides)


def tiny_model(overrides: list[str] | None = None, seed: int = 0):
    """A tiny model whose adaLN-Zero gates are opened, so blocks are not identities
    (a stand-in for trained weights)."""
    cfg = tiny_config(overrides)
    torch.manual_seed(seed)
    model = build_model(cfg)
    for ge in {id(model.encoder): model.encoder, id(model.denoiser): model.denoiser}.values():
        for block in ge.blocks:
            torch.nn.init.normal_(block.adaLN[-1].weight, std=0.1)
        torch.nn.init.normal_(ge.final.adaLN[-1].weight, std=0.1)
    return model.eval(), cfg


def write_checkpoint(path, overrides: list[str] | None = None, step: int = 7, seed: int = 0):
    model, cfg = tiny_model(overrides, seed)
    state = model.state_dict()
    save_atomic(
        {"model": state, "ema": {k: v.clone() for k, v in state.items()}, "optimizers": [],
         "scheduler": None, "step": step, "rng": {}, "config": config.to_dict(cfg),
         "meta": {"fine_tuned": False}},
        path,
    )
    return model, cfg
