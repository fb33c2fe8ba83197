"""The shifted logit-normal time schedule and the flow-loss conventions (REFERENCE section 2)."""

import pytest
import torch

from unite.flow import flow_loss, interpolate, sample_time, shift_time, velocity


def test_shift_formula_values():
    t0 = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(shift_time(t0, 0.5), torch.tensor([0.0, 1.0 / 3.0, 1.0]))
    grid = torch.linspace(0, 1, 101)
    assert torch.equal(shift_time(grid, 1.0), grid)  # a = 1: identity


@pytest.mark.parametrize("a", [0.25, 0.5, 0.75, 2.0])
def test_shift_is_monotone_and_fixes_endpoints(a):
    grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    s = shift_time(grid, a)
    assert torch.all(s[1:] > s[:-1])
    assert s[0] == 0 and torch.isclose(s[-1], torch.tensor(1.0, dtype=torch.float64))


def test_smaller_shift_moves_time_toward_noise():
    means = []
    for a in (1.0, 0.75, 0.5, 0.25):
        g = torch.Generator().manual_seed(0)
        means.append(sample_time(20000, a, generator=g).mean().item())
    assert means == sorted(means, reverse=True)
    assert abs(means[0] - 0.5) < 0.01  # logit-normal(0, 1) is symmetric around 1/2


def test_time_sampling_is_seeded():
    a = sample_time(8, 0.5, generator=torch.Generator().manual_seed(3))
    b = sample_time(8, 0.5, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(5)
    c = sample_time(8, 0.5)
    torch.manual_seed(5)
    d = sample_time(8, 0.5)
    assert torch.equal(a, b) and torch.equal(c, d)
    assert torch.all((a > 0) & (a < 1))


def test_interpolation_convention_t1_clean_t0_noise():
    z0, eps = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    assert torch.equal(interpolate(z0, eps, torch.ones(2)), z0)
    assert torch.equal(interpolate(z0, eps, torch.zeros(2)), eps)


def test_velocity_clamps_the_denominator():
    z0, zt = torch.ones(1, 1, 1), torch.zeros(1, 1, 1)
    assert velocity(z0, zt, torch.tensor([0.5]), 0.05).item() == pytest.approx(2.0)
    assert velocity(z0, zt, torch.tensor([1.0]), 0.05).item() == pytest.approx(20.0)


@pytest.mark.parametrize("kind", ["x", "velocity"])
def test_flow_loss_is_sum_over_draws_of_per_draw_means(kind):
    draws, b = 3, 4
    pred, target = torch.randn(draws * b, 5, 2), torch.randn(draws * b, 5, 2)
    z_t, t = torch.randn(draws * b, 5, 2), torch.rand(draws * b)
    total = flow_loss(pred, target, z_t, t, draws, kind=kind, clamp=0.05)
    per_draw = [
        flow_loss(pred[i * b:(i + 1) * b], target[i * b:(i + 1) * b], z_t[i * b:(i + 1) * b],
                  t[i * b:(i + 1) * b], 1, kind=kind, clamp=0.05)
        for i in range(draws)
    ]
    assert torch.allclose(total, sum(per_draw))
    if kind == "x":
        assert torch.allclose(per_draw[0], ((pred[:b] - target[:b]) ** 2).mean())
