"""Classifier-free guidance acts on the x-prediction, uncond + w*(cond - uncond), exactly for
t inside the guidance interval; outside it (or with w = 1) only the conditional pass runs."""

import numpy as np
import pytest
import torch

from unite import config
from unite.models import build_model
from unite.sampling import GuidedVelocity, generate_with_stats, integrate

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {
    "data": {"image_size": 16},
    "model": {"depth": 1, "width": 32, "heads": 2, "decoder_depth": 1, "decoder_width": 32,
              "decoder_heads": 2, "patch_size": 4, "num_registers": 16, "latent_dim": 4},
}
COND, UNCOND = 1.0, -0.5


def spy_model():
    """Tiny model whose denoiser returns COND for real labels and UNCOND for the null label,
    recording every call's times and whether null labels were in the batch."""
    torch.manual_seed(0)
    model = build_model(config.from_dict(TINY)).eval()
    calls = []

    def denoise(z, t, y, **kw):
        null = y == model.num_classes
        calls.append((sorted(set(t.tolist())), bool(null.any()), int(null.sum()), len(y)))
        out = torch.where(null[:, None, None], UNCOND, COND)
        return out.expand_as(z).clone()

    model.denoise = denoise
    return model, calls


def run_euler(model, w, interval, steps=10):
    y = torch.tensor([3, 7])
    f = GuidedVelocity(model, y, cfg_scale=w, interval=interval, clamp=0.05)
    z = integrate(f, torch.zeros(2, 16, 4), solver="euler", steps=steps, shift=1.0)
    return z, f


def test_guidance_only_inside_interval():
    model, calls = spy_model()
    lo, hi = 0.25, 0.75
    _, f = run_euler(model, 3.0, (lo, hi))
    assert len(calls) == 10 == f.nfe
    for times, has_null, n_null, batch in calls:
        (t,) = times
        inside = lo < t < hi
        assert has_null == inside, f"t={t}"
        assert batch == (4 if inside else 2) and n_null == (2 if inside else 0)
    guided = sum(1 for c in calls if c[1])
    assert guided == 5  # t = 0.3 .. 0.7 on the uniform 10-step grid
    assert f.network_passes == 10 + guided


def test_guided_prediction_formula_and_boundaries():
    model, _ = spy_model()
    f = GuidedVelocity(model, torch.tensor([1]), cfg_scale=2.5, interval=(0.2, 0.6), clamp=0.05)
    z = torch.zeros(1, 16, 4)
    inside = f.x_prediction(z, 0.4)
    torch.testing.assert_close(inside, torch.full_like(z, UNCOND + 2.5 * (COND - UNCOND)))
    for t in (0.21, 0.59):
        assert f.guided_at(t)
    # open interval, as the released code: the end points themselves are not guided
    for t in (0.2, 0.6, 0.19, 0.61, 0.0, 1.0):
        assert not f.guided_at(t)
        torch.testing.assert_close(f.x_prediction(z, t), torch.full_like(z, COND))


def test_interval_from_zero_includes_t0_but_never_t1():
    """[0, 1.0) in the released code: t = 0 is guided, the final t = 1.0 evaluation is not."""
    model, _ = spy_model()
    f = GuidedVelocity(model, torch.tensor([1]), cfg_scale=2.5, interval=(0.0, 1.0), clamp=0.05)
    assert f.guided_at(0.0) and f.guided_at(0.999)
    assert not f.guided_at(1.0)


def test_scale_one_never_runs_unconditional_pass():
    model, calls = spy_model()
    z1, f = run_euler(model, 1.0, (0.0, 1.0))
    assert not any(c[1] for c in calls) and f.network_passes == f.nfe == 10
    calls.clear()
    z_cond_only, _ = run_euler(model, 7.0, (0.95, 0.96))  # no grid time inside
    assert not any(c[1] for c in calls)
    torch.testing.assert_close(z1, z_cond_only)


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_real_model_w1_equals_conditional(solver):
    torch.manual_seed(0)
    cfg = config.from_dict(TINY)
    model = build_model(cfg).eval()
    for block in model.encoder.blocks:  # open the adaLN-Zero gates so the class matters
        torch.nn.init.normal_(block.adaLN[-1].weight, std=0.1)
    labels = np.array([0, 5])
    kw = dict(solver=solver, steps=4, seed=0, progress=False)
    a, _ = generate_with_stats(model, cfg, labels, cfg_scale=1.0, interval=(0.0, 1.0), **kw)
    b, stats = generate_with_stats(model, cfg, labels, cfg_scale=4.0, interval=(0.9, 0.95), **kw)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert stats["network_passes"] == stats["nfe"]
    c, stats = generate_with_stats(model, cfg, labels, cfg_scale=4.0, interval=(0.0, 1.0), **kw)
    # every evaluation is guided except Heun's final one at exactly t = 1.0
    assert stats["network_passes"] == 2 * stats["nfe"] - (1 if solver == "heun" else 0)
    assert not np.array_equal(a["images"], c["images"])
