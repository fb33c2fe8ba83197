"""Held-out reconstruction during training and fine-tuning: ``evaluate`` reconstructs the
fixed val subset with the EMA weights and returns the ``"kind": "eval"`` metric values."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from unite.config import Config
from unite.metrics.psnr import psnr_tensor
from unite.modality import batch_size_of, is_image, to_device


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, cfg: Config, device, autocast) -> dict:
    """Reconstruct the fixed val subset with ``model`` (the EMA): images -> val_psnr, val_l1;
    atoms -> val_<recon loss terms>; both -> val_latent_std, the spread of z0 across the val
    items (per latent entry, averaged), which falls to ~0 when every input gets the same latent
    (the collapse of docs/digits.md). Runs under a forked, fixed-seed RNG so that evaluating
    never changes the training random stream."""
    devices = [device] if device.type == "cuda" else []
    sums: dict[str, float] = {}
    count = 0
    z_sum = z_sq = None
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.train.seed + 1)
        for x, _ in loader:
            x = to_device(x, device)
            with autocast():
                z0 = model.encode(x)
                x_hat = model.decode(z0)
            n = batch_size_of(x)
            z = z0.detach().double().flatten(1)
            z_sum = z.sum(0) if z_sum is None else z_sum + z.sum(0)
            z_sq = (z * z).sum(0) if z_sq is None else z_sq + (z * z).sum(0)
            if is_image(cfg):
                vals = {"val_psnr": psnr_tensor(x_hat, x).sum().item(),
                        "val_l1": (x_hat.float() - x.float()).abs().flatten(1).mean(1).sum().item()}
            else:
                from unite.models.atoms import recon_loss

                _, parts = recon_loss(cfg, x_hat, x)
                vals = {f"val_{k}": float(v) * n for k, v in parts.items()}
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v
            count += n
    out = {k: v / max(count, 1) for k, v in sums.items()}
    if count > 1:
        var = (z_sq - z_sum * z_sum / count) / (count - 1)
        out["val_latent_std"] = var.clamp(min=0).sqrt().mean().item()
    return out
