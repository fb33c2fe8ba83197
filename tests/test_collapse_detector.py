"""The held-out evaluation reports val_latent_std, the spread of z0 across images that the
claims' collapse detector reads: ~0 when every image gets the same latent, clearly > 0 for a
model that reads its input."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from training_helpers import SyntheticImages, tiny_config
from unite.acceleration import autocast_for
from unite.models import build_model
from unite.validation import evaluate


class ConstantLatent(torch.nn.Module):
    """A collapsed tokenizer: the same latent whatever the image."""

    def __init__(self, model, x):
        super().__init__()
        self.model = model
        self.z = model.encode(x[:1])

    def encode(self, x):
        return self.z.expand(len(x), *self.z.shape[1:])

    def decode(self, z):
        return self.model.decode(z)


def test_latent_std_separates_a_collapsed_tokenizer(single_thread):
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    data = SyntheticImages(n=24, size=8)
    loader = DataLoader(data, batch_size=8)
    autocast = autocast_for(cfg, torch.device("cpu"))
    healthy = evaluate(model, loader, cfg, torch.device("cpu"), autocast)
    collapsed = evaluate(ConstantLatent(model, data.x), loader, cfg, torch.device("cpu"), autocast)
    assert collapsed["val_latent_std"] < 1e-6
    assert healthy["val_latent_std"] > 0.05
    assert "val_psnr" in healthy and "val_psnr" in collapsed
