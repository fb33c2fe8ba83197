"""The faster training step computes the old maths.

The reference is the plain implementation kept in ``tests/reference_blocks.py`` (the blocks as
they were before the speed work), with MKL GEMMs, every block checkpointed (the old
``grad_checkpointing: true``) and the old optimizer step (non-fused AdamW after
``clip_grad_norm_``). The loss and every parameter gradient of one step of a small config must
agree to 1e-5, and one optimizer step to 1e-6.
"""

import pytest
import torch
import torch.nn.functional as F

from reference_blocks import use_reference_blocks
from training_helpers import one_thread, tiny_config
from unite import config
from unite.models import build_model
from unite.models.checkpointing import AUTO_MIN_DRAWS, plan
from unite.models.kernels import linear, rms_norm, use_onednn
from unite.objective import JointObjective
from unite.optim import build_optimizers, optimizer_step

# 32x32 images so that LPIPS's VGG (random backbone) runs; in-context class tokens from block 1
# so that RoPE's unrotated positions are exercised; three flow draws in two chunks.
SMALL = [
    "data.image_size=32",
    "model.patch_size=8",
    "model.num_registers=16",
    "model.in_context_tokens=4",
    "model.in_context_start=1",
    "train.lpips_weight=1.0",
    "train.lpips_pretrained=false",
    "train.muon=false",
]


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def _model_and_batch(cfg):
    torch.manual_seed(0)
    model = build_model(cfg)
    # adaLN-Zero leaves every block an identity at init; open the gates so that every path of
    # the blocks carries gradient
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adaLN" in name or "final" in name:
                p.normal_(std=0.05)
    g = torch.Generator().manual_seed(1)
    s = cfg.data.image_size
    x = torch.rand(4, 3, s, s, generator=g) * 2 - 1
    y = torch.randint(0, cfg.data.num_classes, (4,), generator=g)
    return model, x, y


def _loss_and_grads(cfg, model, x, y):
    objective = JointObjective(model, cfg).train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)  # same noise, times and label drops in both runs
    loss, _ = objective(x, y)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _reference(cfg_overrides):
    cfg = tiny_config(*SMALL, *cfg_overrides, "model.grad_checkpointing=all")
    model, x, y = _model_and_batch(cfg)
    with use_reference_blocks(), use_onednn(False):
        return _loss_and_grads(cfg, model, x, y)


def _assert_close(ref, new):
    (loss_r, grads_r), (loss_n, grads_n) = ref, new
    assert torch.allclose(loss_n, loss_r, rtol=1e-5, atol=1e-6), (loss_n, loss_r)
    assert grads_n.keys() == grads_r.keys()
    for name, g in grads_r.items():
        scale = g.abs().max().clamp(min=1e-3)
        err = (grads_n[name] - g).abs().max() / scale
        assert err < 1e-5, f"{name}: max error {err:.2e} of the gradient scale"
    # the comparison must be able to fail: some gradients are far from zero
    assert max(g.abs().max() for g in grads_r.values()) > 1e-2


@pytest.mark.parametrize("policy", ["auto", "none"])
def test_fast_step_matches_reference_loss_and_gradients(policy):
    ref = _reference([])
    cfg = tiny_config(*SMALL, f"model.grad_checkpointing={policy}")
    model, x, y = _model_and_batch(cfg)
    _assert_close(ref, _loss_and_grads(cfg, model, x, y))


@pytest.mark.parametrize("policy", ["auto", "selective", "all"])
def test_recompute_policies_leave_gradients_unchanged(policy):
    draws = [f"train.flow_steps_per_recon={AUTO_MIN_DRAWS}", "train.flow_chunk=3"]
    ref = _reference(draws)
    cfg = tiny_config(*SMALL, *draws, f"model.grad_checkpointing={policy}")
    assert plan(policy, AUTO_MIN_DRAWS).denoise is not None  # the denoising passes recompute
    model, x, y = _model_and_batch(cfg)
    _assert_close(ref, _loss_and_grads(cfg, model, x, y))


def test_optimizer_step_matches_clip_then_adamw():
    cfg = tiny_config(*SMALL, "train.grad_clip=0.05")  # small limit: clipping really happens
    states = []
    for fast in (False, True):
        model, x, y = _model_and_batch(cfg)
        _loss_and_grads(cfg, model, x, y)
        params = [p for p in model.parameters() if p.requires_grad]
        if fast:
            (opt,) = build_optimizers(model, cfg)
            assert opt.defaults["fused"]
            norm = optimizer_step([opt], params, cfg.train.grad_clip)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.train.lr, betas=(0.9, 0.999),
                                    eps=cfg.train.adam_eps, weight_decay=0.0)
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            opt.step()
        assert norm > cfg.train.grad_clip
        states.append([p.detach().clone() for p in params])
    moved = max((a - b).abs().max() for a, b in zip(states[0], _model_and_batch(cfg)[0].parameters()))
    assert moved > 1e-4
    for old, new in zip(*states):
        assert torch.allclose(new, old, rtol=0, atol=1e-6)


def test_onednn_linear_and_rms_norm_match_the_plain_ops():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 48, requires_grad=True)
    w = torch.randn(24, 48, requires_grad=True)
    b = torch.randn(24, requires_grad=True)
    g = torch.randn(2, 5, 24)
    with use_onednn(True):
        out = linear(x, w, b)
    grads = torch.autograd.grad(out, (x, w, b), g)
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    out64 = F.linear(x64, w64, b64)
    grads64 = torch.autograd.grad(out64, (x64, w64, b64), g.double())
    assert torch.allclose(out.double(), out64, atol=1e-5)
    for a, r in zip(grads, grads64):
        assert torch.allclose(a.double(), r, atol=1e-4)

    weight = torch.randn(48, requires_grad=True)
    norm = torch.nn.RMSNorm(48)
    with torch.no_grad():
        norm.weight.copy_(weight)
    ours = rms_norm(x, weight, None)
    theirs = norm(x)
    assert torch.allclose(ours, theirs, atol=1e-6)
    gx, gw = torch.autograd.grad(ours, (x, weight), torch.ones_like(ours) + x.detach())
    rx, rw = torch.autograd.grad(theirs, (x, norm.weight), torch.ones_like(ours) + x.detach())
    assert torch.allclose(gx, rx, atol=1e-5) and torch.allclose(gw, rw, atol=1e-5)


def test_checkpointing_policy_is_chosen_by_the_number_of_draws():
    assert plan("auto", 3) == plan("none", 14)  # the authors' loop at F = 3: no recompute
    p14 = plan("auto", 14)
    assert p14.denoise == "full" and p14.tokenize is None and p14.decode is None
    assert plan("selective", 14).denoise == "selective"
    assert plan("all", 1).tokenize == plan("all", 1).decode == "full"
    # the old boolean values still load
    assert config.from_dict({"model": {"grad_checkpointing": True}}).model.grad_checkpointing == "all"
    assert config.from_dict({"model": {"grad_checkpointing": False}}).model.grad_checkpointing == "none"
