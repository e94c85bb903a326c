"""Mean-field numbers against published values, Monte Carlo against mean field, unit statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actlab
from actlab.analysis import (
    correlation_map,
    edge_of_chaos,
    fixed_point,
    propagate,
    selu_jacobian,
    unit_stats,
    variance_map,
)
from actlab.analysis.meanfield import iterate_moments, relu_correlation_step, selu_moment_map


def test_relu_and_leaky_relu_edge_of_chaos():
    assert edge_of_chaos("relu").sigma_w == pytest.approx(math.sqrt(2), abs=1e-9)
    for a in (0.01, 0.2, 0.5):
        assert edge_of_chaos(f"leaky_relu({a})").sigma_w == pytest.approx(math.sqrt(2 / (1 + a * a)), abs=1e-9)


def test_elu_edge_of_chaos_at_sigma_b_02():
    eoc = edge_of_chaos("elu", sigma_b=0.2)
    # Hayou et al. (2019): "about 1.22"; adaptive quadrature split at the kink gives 1.22925
    assert eoc.sigma_w == pytest.approx(1.22925, abs=2e-4)
    fp = fixed_point("elu", eoc.sigma_w, 0.2)
    assert fp.converged and fp.chi == pytest.approx(1.0, abs=1e-8)


def test_tanh_edge_of_chaos_at_sigma_b_0_is_1():
    """Poole et al. (2016): at sigma_b = 0, tanh's order-to-chaos transition is sigma_w = 1 (chi = sigma_w^2 at
    q* = 0 below it). The variance iterates converge algebraically there; taking an unconverged iterate for q* gave
    1.0017."""
    assert edge_of_chaos("tanh").sigma_w == pytest.approx(1.0, abs=1e-7)
    below, above = fixed_point("tanh", 0.9995, 0.0), fixed_point("tanh", 1.0005, 0.0)
    assert below.converged and below.q == 0.0 and below.chi == pytest.approx(0.9995**2, rel=1e-9)
    # just above, q* = (1 - 1/sigma_w^2) / 2 to first order
    assert above.converged and above.q == pytest.approx((1 - 1 / 1.0005**2) / 2, rel=2e-3) and above.chi > 1


def test_standard_deviations_must_be_finite_and_non_negative():
    for call in (lambda: edge_of_chaos("relu", sigma_b=-1.0), lambda: fixed_point("tanh", -1.0, 0.0),
                 lambda: edge_of_chaos("relu", sigma_b=math.nan)):
        with pytest.raises(actlab.ActlabError, match="is not allowed; it is a standard deviation"):
            call()


def test_propagation_needs_an_elementwise_activation():
    with pytest.raises(actlab.ActlabError, match="propagate: swiglu is gated"):
        propagate("swiglu", depth=2, width=8)


def test_no_edge_of_chaos_is_a_clear_message():
    eoc = edge_of_chaos("sigmoid")
    assert eoc.sigma_w is None and "does not change sign" in eoc.message
    fp = fixed_point("relu", 2.0, 0.0)
    assert fp.q is None and "grows without bound" in fp.note


def test_selu_fixed_point_is_attracting_with_jacobian_norm_07877():
    J = selu_jacobian(0.0, 1.0)
    # Klambauer et al. (2017) print 0.7877; the exact value is 0.78767
    assert np.linalg.norm(J, 2) == pytest.approx(0.78767, abs=5e-5)
    mean, var = selu_moment_map(0.0, 1.0)
    assert abs(mean) < 1e-6 and var == pytest.approx(1.0, abs=1e-6)  # (0, 1) is the fixed point
    assert abs(J[0, 0]) < 1e-6 and abs(J[1, 0]) < 1e-6  # with omega = 0 the input mean does not matter
    for start in ((0.5, 1.5), (-0.3, 0.5), (0.0, 2.5)):
        mu, nu = iterate_moments(*start, steps=60)[-1]
        assert mu == pytest.approx(0.0, abs=1e-3) and nu == pytest.approx(1.0, abs=1e-3)


def test_relu_correlation_approaches_one_as_9pi2_over_2l2():
    delta = 1.0
    for _ in range(10000):
        delta = relu_correlation_step(delta)
    assert delta / (9 * math.pi**2 / (2 * 10000**2)) == pytest.approx(1.0, abs=0.01)  # Hayou et al. (2019)
    for c in (0.0, 0.5, 0.9, 0.999):  # split at the kinks, the quadrature map matches the arc-cosine kernel
        closed = 1 - relu_correlation_step(1 - c)
        assert correlation_map("relu", c, 1.0, math.sqrt(2), 0.0) == pytest.approx(closed, abs=1e-9)


def test_gaussian_expectations_are_exact_across_kinks():
    # E[relu(z)^2] = 1/2, E[|z|] = sqrt(2/pi), E[1{z > 0.7}] = 1 - Phi(0.7): kinks and jumps off the origin too
    from scipy.stats import norm

    from actlab.analysis.meanfield import gaussian_mean

    assert gaussian_mean(lambda x: np.maximum(x, 0) ** 2, 1.0, (0.0,)) == pytest.approx(0.5, abs=1e-12)
    assert gaussian_mean(np.abs, 2.0, (0.0,)) == pytest.approx(math.sqrt(2.0) * math.sqrt(2 / math.pi), abs=1e-12)
    assert gaussian_mean(lambda x: (x > 0.7) * 1.0, 1.0, (0.7,)) == pytest.approx(norm.sf(0.7), abs=1e-12)


def test_variance_map_matches_closed_forms():
    assert variance_map("relu", 3.0, 1.0, 0.5) == pytest.approx(1.5 + 0.25, rel=1e-10)
    assert variance_map("identity", 2.0, 1.3, 0.1) == pytest.approx(1.69 * 2 + 0.01, rel=1e-10)


@pytest.mark.parametrize("act,sigma_w,sigma_b", [("tanh", 1.2, 0.1), ("relu", math.sqrt(2), 0.0), ("elu", 1.234, 0.2)])
def test_monte_carlo_follows_mean_field(act, sigma_w, sigma_b):
    p = propagate(act, depth=6, width=1024, sigma_w=sigma_w, sigma_b=sigma_b, samples=128)
    for mc, mf in zip(p.variance, p.q_mean_field):
        # one random network of finite width: its layer variances wander around the mean-field value (ReLU's by
        # ~15% after 6 layers at width 1024)
        assert mc == pytest.approx(mf, rel=0.2)
    for mc, mf in zip(p.correlation, p.c_mean_field):
        assert mc == pytest.approx(mf, abs=0.03)
    assert len(p.grad_norm) == 6 and all(g > 0 for g in p.grad_norm)


def test_gradients_vanish_off_the_edge_and_hold_on_it():
    below = propagate("relu", depth=20, width=256, sigma_w=1.0, samples=64)
    on = propagate("relu", depth=20, width=256, sigma_w=math.sqrt(2), samples=64)
    # backpropagated from the output, gradients shrink toward the input by sqrt(chi) = sqrt(1/2) per layer
    assert below.grad_norm[-1] / below.grad_norm[0] > 100
    assert 0.2 < on.grad_norm[-1] / on.grad_norm[0] < 5


def test_propagate_bad_input():
    with pytest.raises(ValueError, match="depth = 0"):
        propagate("relu", depth=0)
    with pytest.raises(ValueError, match="input_correlation"):
        propagate("relu", input_correlation=2.0)
    with pytest.raises(actlab.UnknownActivationError):
        propagate("nope")


def test_unit_stats_find_dead_and_saturated_units():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), actlab.get("relu"), torch.nn.Linear(4, 4), actlab.get("tanh"))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([-1.0, 1.0, -2.0, 3.0]))
        model[2].weight.zero_()
        model[2].bias.copy_(torch.tensor([20.0, 0.0, -30.0, 0.1]))
    stats = unit_stats(model, torch.randn(64, 4))
    assert [s.activation for s in stats] == ["relu", "tanh"]
    assert stats[0].dead == 0.5 and stats[1].saturated == 0.5 and stats[1].dead == 0.0
