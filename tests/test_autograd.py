"""Gradients: autograd against the closed-form derivative, gradcheck and gradgradcheck in float64, trainable
parameters, and what backward keeps alive."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ELEMENTWISE, GATED, away_from_breakpoints, sample_points
from test_reference import cases

import actlab
from actlab.kernels.implementations import IMPLEMENTATIONS


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_autograd_matches_closed_form_derivative_including_kinks(name, params):
    """At the breakpoints too: actlab's derivative follows PyTorch's conventions (relu'(0) = 0, ...)."""
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    pts = np.concatenate([sample_points(seed=8, n=200), np.asarray(spec.breakpoints(**p), dtype=np.float64)])
    x = torch.from_numpy(pts).requires_grad_()
    y = actlab.functional.apply(spec, x, **params)
    (g,) = torch.autograd.grad(y.sum(), x)
    want = spec.derivative(pts, **p)
    # Within a few ulps of |f'|, plus a few ulps of 1 and of |x| (the scale of the terms backward formulas combine:
    # native sigmoid's s(1 - s), gelu_backward's 1 + erf, silu_backward's 1 + u (1 - s(u)) whose 1 - s(u) is lost
    # once s(u) rounds to 1), plus the input's own rounding carried by f'' (|x f''(x)|).
    h = 1e-6 * np.maximum(np.abs(pts), 1e-3)
    with np.errstate(all="ignore"):
        carried = np.nan_to_num(np.abs(pts * (spec.derivative(pts + h, **p) - spec.derivative(pts - h, **p)) / (2 * h)))
    with np.errstate(invalid="ignore"):  # an overflowed derivative (exponential at 1000) is inf on both sides
        ok = (np.abs(g.numpy() - want) <= 8 * np.finfo(np.float64).eps * (np.abs(want) + 1.0 + np.abs(pts) + carried)
              ) | (g.numpy() == want)
    assert ok.all(), list(zip(pts[~ok][:5], g.numpy()[~ok][:5], want[~ok][:5]))


@pytest.mark.parametrize("name,params", cases(ELEMENTWISE))
def test_gradcheck_and_gradgradcheck(name, params):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    pts = away_from_breakpoints(spec, np.linspace(-6, 6, 97) + 0.0123, p, margin=1e-2)
    x = torch.from_numpy(pts).requires_grad_()
    fn = lambda t: actlab.functional.apply(spec, t, **params)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("name", GATED)
def test_gated_gradcheck_and_gradgradcheck(name):
    x = torch.randn(4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    fn = lambda t: actlab.functional.apply(name, t)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    if name != "reglu":  # relu's second derivative is a delta at 0: nothing smooth to check
        assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("beta", [0.0, 0.7, 1.5])
def test_trainable_swish_beta_gradient(beta):
    x = torch.linspace(-6, 6, 41, dtype=torch.float64).requires_grad_()
    b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, bb: actlab.functional.swish(t, beta=bb), (x, b))
    assert torch.autograd.gradgradcheck(lambda t, bb: actlab.functional.swish(t, beta=bb), (x, b))


def test_trainable_swish_module_learns_beta():
    module = actlab.get("swish", trainable=True)
    x = torch.linspace(-3, 3, 101)
    target = actlab.functional.swish(x, beta=2.0)
    opt = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = ((module(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert module.beta.item() == pytest.approx(2.0, abs=0.02)


def test_prelu_per_channel_gradients_match_manual():
    m = actlab.get("prelu", num_parameters=3).double()
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = m(x)
    manual = torch.where(x > 0, x, m.weight.view(1, 3, 1, 1) * x)
    torch.testing.assert_close(y, manual)
    y.sum().backward()
    expect = torch.where(x > 0, torch.zeros_like(x), x).sum(dim=(0, 2, 3))
    torch.testing.assert_close(m.weight.grad, expect)


def _saved_bytes(fn, x):
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return saved


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if actlab.spec(n).native is None])
def test_actlab_functions_save_only_the_input(name):
    """actlab's own paths keep one tensor of the input's size, where an eager composition keeps several: the input
    itself (its Functions), or one tensor made from it (an entry's composed ops: squared ReLU keeps relu(x))."""
    x = torch.randn(1000, requires_grad=True)
    saved = _saved_bytes(lambda t: actlab.functional.apply(name, t), x)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    assert list(storages.values()) == [x.numel() * x.element_size()]
    if IMPLEMENTATIONS.get(actlab.spec(name)) is None or IMPLEMENTATIONS[actlab.spec(name)].composed is None:
        assert len(saved) == 1 and saved[0].data_ptr() == x.data_ptr()


def test_eager_swish_composition_keeps_more():
    x = torch.randn(1000, requires_grad=True)
    assert len(_saved_bytes(lambda t: t * torch.sigmoid(1.5 * t), x)) >= 2
    assert len(_saved_bytes(lambda t: actlab.functional.swish(t, beta=1.5), x)) == 1


@pytest.mark.parametrize("name", [n for n in GATED if actlab.spec(n).native is None])
def test_gated_functions_save_only_the_input(name):
    """The input itself, or (composed ops: ReGLU's) views of its storage only."""
    x = torch.randn(8, 16, requires_grad=True)
    saved = _saved_bytes(lambda t: actlab.functional.apply(name, t), x)
    assert {t.untyped_storage().data_ptr() for t in saved} == {x.untyped_storage().data_ptr()}
    if IMPLEMENTATIONS.get(actlab.spec(name)) is None or IMPLEMENTATIONS[actlab.spec(name)].composed is None:
        assert len(saved) == 1 and saved[0].data_ptr() == x.data_ptr()


@pytest.mark.parametrize("text", ["swish(beta=1.5, trainable=True)", "squared_relu", "softsign", "swiglu", "elu"])
def test_without_torchs_private_functorch_queries_the_expressions_give_the_same_values(monkeypatch, text):
    """A torch release without the private functorch queries gets stand-ins that treat every tensor as transformed
    (actlab/kernels/transforms.py): the spec's expressions run instead of the fused paths, with the same results."""
    from actlab.kernels import dispatch, transforms

    x = torch.randn(6, 8, dtype=torch.float64)

    def values_and_grads():
        torch.manual_seed(0)
        module = actlab.get(text).double()
        xi = x.clone().requires_grad_()
        y = module(xi)
        y.pow(2).sum().backward()
        return y.detach(), xi.grad, [p.grad for p in module.parameters()]

    expected = values_and_grads()
    monkeypatch.setattr(transforms, "_functorch_wrapped", lambda t: True)
    monkeypatch.setattr(transforms, "_legacy_batched", lambda t: True)
    monkeypatch.setattr(dispatch, "transforms_active", lambda: True)
    got = values_and_grads()
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1])
    for a, b in zip(got[2], expected[2]):
        torch.testing.assert_close(a, b)
