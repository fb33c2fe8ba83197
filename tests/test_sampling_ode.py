"""Probability-flow ODE mechanics on a toy whose x-prediction is a known constant z*:
solvers reach the exact solution of the (clamped) ODE, NFE counts are exact, the shifted grid
is monotone and denser near noise, and generate() returns sample-file arrays."""

import math

import numpy as np
import pytest
import torch

from unite import config
from unite.models import build_model
from unite.sampling import (
    GuidedVelocity,
    class_balanced_labels,
    generate,
    generate_with_stats,
    integrate,
    time_grid,
)

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {
    "data": {"image_size": 16},
    "model": {"depth": 1, "width": 32, "heads": 2, "decoder_depth": 1, "decoder_width": 32,
              "decoder_heads": 2, "patch_size": 4, "num_registers": 16, "latent_dim": 4},
}


def tiny(**train):
    cfg = config.from_dict({**TINY, "train": train})
    torch.manual_seed(0)
    return build_model(cfg).eval(), cfg


def constant_target(model, z_star):
    """Replace the denoiser by a constant x-prediction z* (what it would be for a single point)."""
    model.denoise = lambda z, t, y, **kw: z_star.expand_as(z).clone()
    return model


def solve(model, cfg, z0, solver, steps, shift=None):
    f = GuidedVelocity(model, torch.zeros(len(z0), dtype=torch.long), cfg_scale=1.0,
                       interval=(0.0, 1.0), clamp=cfg.train.velocity_clamp)
    z1 = integrate(f, z0.clone(), solver=solver, steps=steps,
                   shift=cfg.train.time_shift if shift is None else shift,
                   atol=cfg.sample.atol, rtol=cfg.sample.rtol)
    return z1, f.nfe


def clamped_solution(z_star, z0, c):
    """Exact z(1): linear path z* + (1-t)(z0 - z*) until t = 1 - c, then relaxation toward z*
    with time constant c over a duration c (factor e^-1)."""
    return z_star + c * math.exp(-1.0) * (z0 - z_star)


@pytest.mark.parametrize("shift", [1.0, 0.5])
def test_euler_lands_on_target_when_clamp_inactive(shift):
    model, cfg = tiny(velocity_clamp=1e-7)
    z_star, z0 = torch.randn(16, 4), torch.randn(3, 16, 4)
    constant_target(model, z_star)
    z1, nfe = solve(model, cfg, z0, "euler", 7, shift)
    # the linear path is exact under Euler: every step moves 1/(1-t) of the remaining gap * h
    torch.testing.assert_close(z1, z_star.expand_as(z1), atol=1e-4, rtol=0)
    assert nfe == 7


def test_solvers_reach_exact_clamped_solution():
    model, cfg = tiny(velocity_clamp=0.05, time_shift=0.5)
    z_star, z0 = torch.randn(16, 4), torch.randn(2, 16, 4)
    constant_target(model, z_star)
    exact = clamped_solution(z_star, z0, 0.05)
    errors = {}
    for solver, steps in [("euler", 50), ("heun", 50), ("heun", 100), ("dopri5", 0)]:
        z1, nfe = solve(model, cfg, z0, solver, steps)
        errors[(solver, steps)] = (z1 - exact).abs().max().item()
        if solver == "euler":
            assert nfe == steps
        elif solver == "heun":
            assert nfe == 2 * steps
        else:
            assert nfe > 0
    assert errors[("dopri5", 0)] < 1e-2  # rtol 1e-3 on |z| ~ 3, and a kink at t = 1 - c
    assert errors[("heun", 50)] < 0.05
    assert errors[("heun", 100)] < errors[("heun", 50)] / 3  # second order
    assert errors[("heun", 50)] < errors[("euler", 50)]
    # dopri5 and Heun agree on the toy
    z_h, _ = solve(model, cfg, z0, "heun", 100)
    z_d, _ = solve(model, cfg, z0, "dopri5", 0)
    torch.testing.assert_close(z_h, z_d, atol=1e-2, rtol=0)


def test_time_grid_monotone_and_denser_near_noise():
    uniform = time_grid(20, 1.0)
    shifted = time_grid(20, 0.5)
    for g in (uniform, shifted):
        assert g[0].item() == 0.0 and g[-1].item() == 1.0 and len(g) == 21
        assert torch.all(g[1:] > g[:-1])
    torch.testing.assert_close(uniform, torch.linspace(0, 1, 21))
    steps = shifted.diff()
    assert steps[0] < steps[-1]  # small steps at the noise end (t = 0)
    assert torch.all(shifted[1:-1] < uniform[1:-1])  # every interior time moved toward noise
    assert torch.all(time_grid(20, 2.0)[1:-1] > uniform[1:-1])


def test_generate_returns_image_arrays_and_nfe():
    model, cfg = tiny()
    labels = class_balanced_labels(10, 1)
    arrays, nfe = generate(model, cfg, labels, solver="heun", steps=2, cfg_scale=1.0,
                           interval=(0.1, 1.0), seed=0, device="cpu", batch_size=10)
    assert nfe == 4
    assert arrays["images"].shape == (10, 16, 16, 3) and arrays["images"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["labels"], labels)
    again, _ = generate(model, cfg, labels, solver="heun", steps=2, cfg_scale=1.0,
                        interval=(0.1, 1.0), seed=0, device="cpu", batch_size=4)
    # batch size is irrelevant (up to a rounding flip of one grey level)
    assert np.abs(arrays["images"].astype(int) - again["images"]).max() <= 1
    other, _ = generate(model, cfg, labels, solver="heun", steps=2, cfg_scale=1.0,
                        interval=(0.1, 1.0), seed=1, device="cpu", batch_size=10)
    assert not np.array_equal(arrays["images"], other["images"])


def test_nfe_and_network_passes_counts():
    model, cfg = tiny()
    labels = np.array([0, 1, 2])
    _, euler = generate_with_stats(model, cfg, labels, solver="euler", steps=5, cfg_scale=1.0,
                                   interval=(0, 1), seed=0, progress=False)
    assert euler == {"nfe": 5, "network_passes": 5}
    _, heun = generate_with_stats(model, cfg, labels, solver="heun", steps=5, cfg_scale=2.0,
                                  interval=(0, 1), seed=0, progress=False)
    # every evaluation guided (2 passes) except the last one at exactly t = 1.0 (open interval)
    assert heun == {"nfe": 10, "network_passes": 19}
    constant_target(model, torch.randn(16, 4))  # a smooth toy keeps dopri5's NFE small
    _, dopri = generate_with_stats(model, cfg, labels, solver="dopri5", steps=1, cfg_scale=1.0,
                                   interval=(0, 1), seed=0, progress=False)
    assert dopri["nfe"] > 0 and dopri["network_passes"] == dopri["nfe"]


def test_class_balanced_labels():
    labels = class_balanced_labels(10, 5)
    assert len(labels) == 50 and labels.dtype == np.int64
    assert np.all(np.bincount(labels) == 5)
    assert np.all(np.diff(labels) >= 0)  # per class, in class order
