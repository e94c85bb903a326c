"""The Triton kernels, run by Triton's interpreter on CPU tensors (TRITON_INTERPRET=1), against the float64
references: every covered activation, float32/bfloat16/float16, forward and backward, sizes that leave a partial
last block, outputs poisoned before each run so an element the kernel never wrote fails."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch
from conftest import FLOAT_DTYPES, condition, sample_points, ulps
from test_reference import PARAM_CASES

import actlab
from actlab.kernels.implementations import IMPLEMENTATIONS, kernel_call

if importlib.util.find_spec("triton") is None:  # pragma: no cover - CI installs the dev extras
    if os.environ.get("CI"):
        raise RuntimeError("triton is not installed; CI must run the Triton kernel tests (pip install -e '.[dev]')")
    pytest.skip("triton is not installed (pip install -e '.[dev]')", allow_module_level=True)

POISON = 12345.0  # no activation returns it at the sampled points


@pytest.fixture(scope="module")
def tk():
    """The kernels module; conftest sets TRITON_INTERPRET=1 before triton is first imported."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("TRITON_INTERPRET is not 1 in this run")
    return importlib.import_module("actlab.kernels.triton_kernels")


COVERED = [s for s, impl in IMPLEMENTATIONS.items() if impl.triton is not None]
ELEMENTWISE = [(s.name, p) for s in COVERED if s.kind == "elementwise" for p in [{}] + PARAM_CASES.get(s.name, [])]
GATED = [(s.name, {}) for s in COVERED if s.kind == "gated"]
GATED += [("geglu", {"approximate": "tanh"}), ("swiglu", {"beta": 1.7})]


def _poisoned(like: torch.Tensor, shape=None) -> torch.Tensor:
    return torch.full(like.shape if shape is None else shape, POISON, dtype=like.dtype)


def _points(dtype: torch.dtype, breakpoints=()) -> torch.Tensor:
    """The sampled points, the breakpoints (where a kink's one-sided convention shows), +-inf and NaN, in a size
    that is no multiple of the block."""
    x = np.concatenate([sample_points(seed=11), list(breakpoints), [np.inf, -np.inf, np.nan]])
    return torch.from_numpy(x).to(dtype)


def _forward_budget(dtype):
    # float32: a few rounded steps on top of the condition number; half types: rounded once from float32.
    return 8.0 if dtype == torch.float32 else 1.0


def _derivative_tolerance(spec, xd, p, dtype):
    """Allowed |error| of a derivative: how much the float64 derivative itself moves within one rounding of x
    (the kernel sees x exactly, but an exact computation on a neighbour is as good), plus a few ulps of the
    result in float32 and one rounding to the half type."""
    eps32 = float(torch.finfo(torch.float32).eps)
    want = spec.derivative(xd, **p)
    with np.errstate(all="ignore"):
        spread = np.maximum(np.abs(spec.derivative(xd * (1 + 4 * eps32), **p) - want),
                            np.abs(spec.derivative(xd * (1 - 4 * eps32), **p) - want))
    spread = np.nan_to_num(spread, nan=0.0, posinf=0.0)
    spread[np.isin(xd, list(spec.breakpoints(**p)))] = 0.0  # at a kink the one-sided convention must match exactly
    rel = 16 * eps32 + (float(torch.finfo(dtype).eps) if dtype != torch.float32 else 0.0)
    # Below the normal range absolute resolution is what is left: float32's (scaled by the x factors the formulas
    # multiply a subnormal gate with), and the half type's smallest subnormal.
    floor = 2 * torch.finfo(torch.float32).tiny * (1 + np.abs(np.nan_to_num(xd))) ** 2 + _smallest_subnormal(dtype)
    return spread + rel * np.abs(np.nan_to_num(want, posinf=0.0, neginf=0.0)) + floor


def _smallest_subnormal(dtype):
    return float(torch.finfo(dtype).tiny * torch.finfo(dtype).eps)


def _assert_same_specials(got: np.ndarray, want: np.ndarray, what: str):
    assert not np.any(got == POISON), f"{what}: elements left unwritten"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN where the reference has none")
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"{what}: infinities differ")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name,params", ELEMENTWISE)
def test_elementwise_forward_and_backward(tk, name, params, dtype):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    call = kernel_call(spec, p)
    x = _points(dtype, spec.breakpoints(**p))
    xd = x.double().numpy()

    y = tk.elementwise_forward(x, call.key, call.scalars, out=_poisoned(x))
    assert y.dtype == dtype
    want = spec.reference(xd, **p)
    got = y.double().numpy()
    _assert_same_specials(got, want, f"{name}{params} forward")
    finite = np.isfinite(want)
    excess = ulps(y[finite], want[finite], dtype) - condition(spec, xd[finite], p)
    # Computed in float32: a gate below float32's normal range, times x, is as exact as float32 can be.
    subnormal = 2 * torch.finfo(torch.float32).smallest_normal * np.maximum(1.0, np.abs(xd[finite]))
    excess[np.abs(got[finite] - want[finite]) <= subnormal] = 0.0
    worst = xd[finite][excess.argmax()]
    assert excess.max() <= _forward_budget(dtype), f"{name}{params}: {excess.max():.1f} ulp at x={worst}"

    g = torch.from_numpy(np.random.default_rng(3).uniform(0.5, 2.0, x.numel())).to(dtype)
    dx, dw = tk.elementwise_backward(g, x, call.key, call.scalars, out=_poisoned(x))
    assert dw is None and dx.dtype == dtype
    dwant = g.double().numpy() * spec.derivative(xd, **p)
    dgot = dx.double().numpy()
    _assert_same_specials(dgot, dwant, f"{name}{params} backward")
    ok = np.isfinite(dwant)
    tol = g.double().numpy()[ok] * _derivative_tolerance(spec, xd[ok], p, dtype)
    err = np.abs(dgot[ok] - dwant[ok])
    worst = int(np.argmax(err - tol))
    assert np.all(err <= tol), f"{name}{params}: derivative off by {err[worst]:.3g} at x={xd[ok][worst]}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name,value", [("swish", 1.5), ("swish", 0.0), ("prelu", 0.3)])
def test_trainable_scalar_parameter_gradient_reduced_in_the_kernel(tk, name, value, dtype):
    spec = actlab.spec(name)
    key = "init" if name == "prelu" else "beta"
    weight = torch.tensor([value], dtype=dtype)
    call = kernel_call(spec, spec.resolve_params({key: weight}, tensor_ok=True))
    assert call is not None and call.weight is weight
    n = 5 * 1024 + 17  # several blocks, so the partial sums are combined
    x = (torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3).to(dtype)
    g = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    y = tk.elementwise_forward(x, call.key, call.scalars, call.weight, out=_poisoned(x))
    p = spec.resolve_params({key: float(weight.double())})
    torch.testing.assert_close(y.double(), torch.from_numpy(spec.reference(x.double().numpy(), **p)),
                               rtol=2 * torch.finfo(dtype).eps, atol=1e-6)
    dx, dw = tk.elementwise_backward(g, x, call.key, call.scalars, call.weight, need_weight_grad=True)
    want_dw = (g.double() * spec.torch_param_derivatives[key](x.double(), **{**p, key: weight.double()})).sum()
    assert dw.dtype == torch.float32
    torch.testing.assert_close(dw.double(), want_dw, rtol=1e-5, atol=1e-4)
    want_dx = g.double() * torch.from_numpy(spec.derivative(x.double().numpy(), **p))
    torch.testing.assert_close(dx.double(), want_dx, rtol=2 * torch.finfo(dtype).eps, atol=1e-6)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name,params", GATED, ids=lambda v: str(v))
def test_gated_read_both_halves_of_one_buffer(tk, name, params, dtype):
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    call = kernel_call(spec, p)
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(3, 37, 2 * 51, generator=gen, dtype=torch.float64) * 3).to(dtype)  # H = 51: no block multiple
    x[0, 0, 51] = float("-inf")  # a gate at -inf: value * 0, not NaN
    xd = x.double()
    a, b = xd[..., :51], xd[..., 51:]
    y = tk.gated_forward(x, call.key, call.scalars, out=_poisoned(x, (3, 37, 51)))
    want = torch.from_numpy(spec.reference(xd.numpy(), **p))
    assert not (y == POISON).any()
    torch.testing.assert_close(y.double(), want, rtol=4 * torch.finfo(dtype).eps, atol=1e-6)

    g = torch.randn(3, 37, 51, generator=gen, dtype=torch.float64).to(dtype)
    dx = tk.gated_backward(g, x, call.key, call.scalars, out=_poisoned(x))
    assert not (dx == POISON).any()
    gate_p = {k: v for k, v in p.items() if k in spec.gate.params}
    gate_p = spec.gate.resolve_params(gate_p)
    bn = b.numpy()
    want_da = g.double() * torch.from_numpy(spec.gate.reference(bn, **gate_p))
    want_db = g.double() * a * torch.from_numpy(spec.gate.derivative(bn, **gate_p))
    tol = dict(rtol=8 * torch.finfo(dtype).eps, atol=1e-5)
    torch.testing.assert_close(dx[..., :51].double(), want_da, **tol)
    torch.testing.assert_close(dx[..., 51:].double(), want_db, **tol)


def test_64_bit_offsets_give_the_same_result(tk):
    """The int64 offset path (used from 2**31 elements) on a small input: same bits as the int32 path."""
    x = torch.randn(3000, generator=torch.Generator().manual_seed(5))
    fwd = tk.FUNCTIONS["swish"][0]
    y32, y64 = torch.empty_like(x), torch.empty_like(x)
    for y, big in ((y32, False), (y64, True)):
        tk._forward_kernel[tk._grid(x.numel())](x, y, x, x.numel(), 1.0, 0.0, FWD=fwd, HAS_W=False, BLOCK=tk.BLOCK,
                                                 BIG=big)
    assert torch.equal(y32, y64)
    assert tk._big(2**31) and not tk._big(2**20)


def test_kernels_refuse_what_they_do_not_cover(tk):
    x = torch.randn(4, 6)
    assert tk.supports(x) and not tk.supports(x.t()) and not tk.supports(x.double())
    assert kernel_call(actlab.spec("prelu"), {"num_parameters": 3, "init": torch.full((3,), 0.25)}) is None
    with pytest.raises(ValueError, match="no trainable parameter"):
        tk.elementwise_backward(x, x, "relu", (0.0, 0.0), torch.ones(1), need_weight_grad=True)


@pytest.mark.parametrize("name,params", [("swish", {"beta": 1.5}), ("mish", {}), ("gelu", {"approximate": "tanh"}),
                                         ("swiglu", {}), ("geglu", {}), ("glu", {})])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_autograd_function_runs_the_triton_kernels(tk, monkeypatch, name, params, dtype):
    """The autograd Function with the kernels switched on for CPU tensors (interpreted): forward and backward
    agree with the spec's PyTorch formulation."""
    from actlab.kernels import function

    monkeypatch.setattr(function, "TRITON_DEVICES", {"cuda", "cpu"})
    launched = []
    real = tk._grid
    monkeypatch.setattr(tk, "_grid", lambda n: launched.append(n) or real(n))
    spec = actlab.spec(name)
    p = spec.resolve_params(params)
    x = (torch.randn(5, 2 * 37, generator=torch.Generator().manual_seed(0)) * 3).to(dtype).requires_grad_()
    y = function.activation_function(spec).apply(x, *p.values())
    g = torch.randn_like(y)
    y.backward(g)
    assert len(launched) == 2  # one forward and one backward kernel
    xr = x.detach().float().requires_grad_()
    yr = spec.torch_forward(xr, **p)
    yr.backward(g.float())
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(y.float(), yr, **tol)
    torch.testing.assert_close(x.grad.float(), xr.grad, **tol)


def test_triton_path_reduces_a_trainable_beta(tk, monkeypatch):
    from actlab.kernels import function

    monkeypatch.setattr(function, "TRITON_DEVICES", {"cuda", "cpu"})
    spec = actlab.spec("swish")
    beta = torch.tensor(1.3, requires_grad=True)
    x = torch.randn(3000, generator=torch.Generator().manual_seed(1), requires_grad=True)
    launched = []
    real = tk._grid
    monkeypatch.setattr(tk, "_grid", lambda n: launched.append(n) or real(n))
    function.activation_function(spec).apply(x, beta).square().sum().backward()
    assert len(launched) == 2
    b2, x2 = beta.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    (x2 * torch.sigmoid(b2 * x2)).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(beta.grad, b2.grad, rtol=1e-4, atol=1e-4)
