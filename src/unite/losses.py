"""Reconstruction loss of the decoder (REFERENCE section 2).

Images: ``l1_weight * |x_hat - x|_1 + lpips_weight * LPIPS(x_hat, x)``, both images in
[-1, 1] (LPIPS's expected range; the authors' code fed [0, 1], REFERENCE section 8).
The LPIPS network is frozen and stays in eval mode even when the surrounding module is put
in training mode (its dropout would otherwise be on, another defect of the authors' code).
Atoms: delegated to ``unite.models.atoms.recon_loss``.
"""

from __future__ import annotations

import torch
from torch import nn

from unite.config import Config
from unite.errors import UserError
from unite.modality import is_image


def build_lpips(pretrained: bool) -> nn.Module:
    """Frozen LPIPS(VGG) in eval mode; ``pretrained`` needs torchvision's ImageNet VGG16 weights."""
    import lpips

    try:
        net = lpips.LPIPS(net="vgg", pnet_rand=not pretrained, verbose=False)
    except Exception as exc:  # download failure, missing or corrupt weight file
        hub = torch.hub.get_dir()
        raise UserError(
            "LPIPS needs torchvision's ImageNet VGG16 weights (vgg16-397923af.pth) and could "
            f"not load or download them ({type(exc).__name__}: {exc}). Put the file in "
            f"{hub}/checkpoints/ ($TORCH_HOME/hub/checkpoints), or train without it: "
            "--set train.lpips_weight=0 (no perceptual loss) or --set "
            "train.lpips_pretrained=false (random VGG backbone, not the paper's loss)."
        ) from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    # channels-last convolutions: a few % faster on CPU (oneDNN), the native layout of
    # tensor-core convolutions on GPU; same values
    return net.to(memory_format=torch.channels_last)


class ReconLoss(nn.Module):
    """Decoder loss; ``forward(pred, x) -> (loss, {name: detached scalar tensor})``."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.image = is_image(cfg)
        t = cfg.train
        self.l1_weight = t.l1_weight
        self.lpips_weight = t.lpips_weight
        # lpips_weight 0: LPIPS is never built (no VGG weights needed, no wasted FLOPs)
        self.lpips = build_lpips(t.lpips_pretrained) if self.image and t.lpips_weight > 0 else None

    def train(self, mode: bool = True):
        super().train(mode)
        if self.lpips is not None:
            self.lpips.eval()  # frozen perceptual network: never in training mode
        return self

    def forward(self, pred, x):
        if not self.image:
            from unite.models.atoms import recon_loss

            loss, parts = recon_loss(self.cfg, pred, x)
            return loss, {k: torch.as_tensor(float(v)) for k, v in parts.items()}
        l1 = (pred.float() - x.float()).abs().mean()
        loss = self.l1_weight * l1
        parts = {"l1": l1.detach()}
        if self.lpips is not None:
            nhwc = torch.channels_last
            perceptual = self.lpips(pred.float().contiguous(memory_format=nhwc),
                                    x.float().contiguous(memory_format=nhwc)).mean()
            loss = loss + self.lpips_weight * perceptual
            parts["lpips"] = perceptual.detach()
        return loss, parts
