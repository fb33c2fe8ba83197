"""Reconstruction loss: L1 + lpips_weight * LPIPS(VGG) on [-1, 1] images, the LPIPS network
frozen and always in eval mode; no LPIPS at all when its weight is 0; a clear error when the
ImageNet VGG weights are missing."""

import lpips
import pytest
import torch

from training_helpers import tiny_config
from unite.errors import UserError
from unite.losses import ReconLoss


def test_zero_lpips_weight_never_builds_lpips(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("LPIPS must not be built when train.lpips_weight is 0")

    monkeypatch.setattr(lpips, "LPIPS", boom)
    loss_fn = ReconLoss(tiny_config("train.lpips_weight=0"))
    assert loss_fn.lpips is None
    x, pred = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.5)
    loss, parts = loss_fn(pred, x)
    assert loss.item() == pytest.approx(0.5) and set(parts) == {"l1"}


def test_missing_vgg_weights_is_a_user_error(monkeypatch):
    def offline(*a, **k):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(lpips, "LPIPS", offline)
    with pytest.raises(UserError) as err:
        ReconLoss(tiny_config("train.lpips_weight=1", "train.lpips_pretrained=true"))
    msg = str(err.value)
    assert "hub/checkpoints" in msg and "train.lpips_weight=0" in msg
    assert "train.lpips_pretrained=false" in msg


def test_lpips_is_frozen_in_eval_mode_and_adds_to_l1():
    torch.manual_seed(0)
    cfg = tiny_config("train.lpips_weight=0.5", "train.lpips_pretrained=false",
                      "data.image_size=32", "model.num_registers=64")
    loss_fn = ReconLoss(cfg).train()  # training mode must not reach the LPIPS network
    assert loss_fn.training and not loss_fn.lpips.training
    assert all(not m.training for m in loss_fn.lpips.modules())
    assert all(not p.requires_grad for p in loss_fn.lpips.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    pred = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1).requires_grad_(True)
    loss, parts = loss_fn(pred, x)
    expected = parts["l1"] + 0.5 * parts["lpips"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["lpips"].item() > 0
    again, _ = loss_fn(pred, x)
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)  # no dropout: deterministic
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    same, _ = loss_fn(x, x)
    assert same.item() == pytest.approx(0.0, abs=1e-6)

