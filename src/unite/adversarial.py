"""The adversarial pieces of GAN decoder fine-tuning (``unite.finetune``, paper App. A).

The discriminator is the paper's "initialised from our Generative Encoder": a trainable copy
of the GE's tokenization pass with a per-token logit head. The losses are VQGAN's: hinge or
non-saturating, balanced against the reconstruction loss by the adaptive weight measured at
the decoder's last layer. ``docs/finetune.md`` says which choices are the paper's and which
are ours.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class Discriminator(nn.Module):
    """A trainable copy of the GE's tokenization pass plus a per-token logit head.

    ``forward(x) -> (B, K + P)`` logits, one per register and per patch token of the last GE
    block's output (in-context class tokens excluded). Initialised from ``encoder`` (the
    trained GE): the paper's "discriminator initialised from our Generative Encoder".
    The last block's full output is read with a forward hook, so the GE code is untouched.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.backbone = copy.deepcopy(encoder)
        self.backbone.requires_grad_(True)
        # the latent head (final adaLN layer + latent LayerNorm) is not on the logit path
        self.backbone.final.requires_grad_(False)
        self.backbone.latent_norm.requires_grad_(False)
        width = self.backbone.width
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 1))
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)
        b = self.backbone
        self.skip = b.in_context_tokens if b.in_context_tokens and b.in_context_start < len(
            b.blocks) else 0
        self._tokens: torch.Tensor | None = None
        b.blocks[-1].register_forward_hook(self._keep_tokens)

    def _keep_tokens(self, module, args, output) -> None:
        self._tokens = output

    def trainable(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters()
                if not n.startswith(("backbone.final.", "backbone.latent_norm."))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.backbone.tokenize(x)
        tokens, self._tokens = self._tokens[:, self.skip:], None
        return self.head(tokens).squeeze(-1)


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


def adaptive_weight(recon: torch.Tensor, adv: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float) -> torch.Tensor:
    """VQGAN's balance: |grad recon| / (|grad adv| + 1e-4) at the decoder's last layer."""
    g_rec = torch.autograd.grad(recon, last_layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, max_weight).detach()


def last_layer(decoder: nn.Module) -> torch.Tensor:
    """The weight the adaptive weight is measured at: the image decoder's pixel head."""
    return decoder.head.weight
