"""Modules from actlab.get: parameters, state_dict, .to(), dtypes, pickling, repr, train/eval behaviour."""

from __future__ import annotations

import io
import pickle

import pytest
import torch
from conftest import GATED

import actlab


def _input_for(name, dtype=torch.float32):
    shape = (4, 6) if actlab.spec(name).kind != "gated" else (4, 6)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize("name", actlab.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64], ids=str)
def test_every_module_output_dtype_follows_input(name, dtype):
    module = actlab.get(name).eval()
    y = module(_input_for(name, dtype))
    assert y.dtype == dtype
    expected_last = 3 if name in GATED else 6
    assert y.shape == (4, expected_last)


@pytest.mark.parametrize("name", actlab.names())
def test_module_matches_functional_and_has_extra_repr(name):
    module = actlab.get(name).eval()
    x = _input_for(name)
    # a module's learned parameters may start from a paper's random draw (ACON's p1, p2): the function gets them
    learned = {k: v.detach() for k, v in module.parameter_values().items() if k in module.spec.learned}
    torch.testing.assert_close(module(x), actlab.functional.apply(name, x, **learned))
    assert type(module).__name__ in repr(module)
    assert isinstance(module, actlab.Activation) and module.spec is actlab.spec(name)


def test_extra_repr_shows_parameters():
    assert repr(actlab.get("swish(beta=1.5)")) == "Swish(beta=1.5)"
    assert repr(actlab.get("swish", trainable=True)) == "Swish(trainable=('beta',))"
    assert repr(actlab.get("leaky_relu")) == "LeakyReLU(negative_slope=0.01)"
    assert repr(actlab.get("prelu", num_parameters=8)) == "PReLU(num_parameters=8)"


def test_trainable_parameters_in_state_dict_and_moved_by_to():
    m = actlab.get("swish(beta=1.5)", trainable=True)
    assert isinstance(m.beta, torch.nn.Parameter) and m.beta.item() == 1.5
    assert list(dict(m.named_parameters())) == ["beta"]
    sd = m.state_dict()
    assert set(sd) == {"beta"}
    m2 = actlab.get("swish", trainable=True)
    m2.load_state_dict(sd)
    assert m2.beta.item() == 1.5
    m.to(torch.float64)
    assert m.beta.dtype == torch.float64
    y = m(torch.randn(3, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16
    assert actlab.get("swish").state_dict() == {}  # fixed beta is configuration, not state


def test_a_trainable_parameter_before_a_fixed_one_keeps_its_place():
    """A registered activation whose trainable parameter comes first: the module hands the kernels its parameters
    in the spec's order (they were once swapped: the learned tensor was appended after the fixed ones)."""
    from actlab.catalog import registry

    spec = actlab.ActivationSpec(
        name="test_affine_order", formula=r"a x + b", references=(),
        torch_forward=lambda x, scale, shift: scale * x + shift,
        params={"scale": actlab.Param(2.0, trainable_allowed=True), "shift": actlab.Param(0.5)})
    actlab.register(spec)
    try:
        module = actlab.get("test_affine_order", trainable=True)
        assert list(module.parameter_values()) == ["scale", "shift"]
        x = torch.zeros(3, requires_grad=True)
        torch.testing.assert_close(module(x), torch.full((3,), 0.5))
        with torch.no_grad():
            torch.testing.assert_close(module(torch.ones(3)), torch.full((3,), 2.5))
    finally:
        registry.unregister("test_affine_order")


def test_assigning_a_fixed_parameter_changes_what_the_module_computes():
    """As with nn.LeakyReLU's negative_slope: ``act.beta = 2.0`` takes effect (validated, forward rebound). It was
    stored as a plain attribute that forward never read, so the module kept computing beta = 1.5."""
    x = torch.randn(5, 7)
    act = actlab.get("swish(beta=1.5)")
    assert act.beta == 1.5
    act.beta = 2.0
    assert "beta=2.0" in repr(act) and torch.allclose(act(x), x * torch.sigmoid(2.0 * x))
    act.beta = 1.0  # PyTorch's own op from here on
    assert torch.equal(act(x), torch.nn.functional.silu(x))
    with pytest.raises(actlab.InvalidParameterError, match="'beta' = -1.0 is not allowed"):
        act.beta = -1.0
    assert act.beta == 1.0
    leaky = actlab.get("leaky_relu")
    leaky.negative_slope = 0.2
    assert leaky(torch.tensor([-1.0])).item() == pytest.approx(-0.2)
    with pytest.raises(AttributeError, match="sizes the learned weight"):
        actlab.get("prelu(num_parameters=4)").num_parameters = 8
    with pytest.raises(TypeError, match="cannot assign 'float' as parameter 'beta'"):
        actlab.get("swish", trainable=True).beta = 2.0  # a learned one is an nn.Parameter, as in PyTorch


def test_prelu_is_per_channel_and_matches_torch():
    m = actlab.get("prelu", num_parameters=3, init=0.1)
    assert m.weight.shape == (3,)
    ref = torch.nn.PReLU(3, init=0.1)
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(m(x), ref(x))
    assert set(m.state_dict()) == {"weight"}  # same key as torch.nn.PReLU
    m.load_state_dict(ref.state_dict())


def test_rrelu_random_in_training_mean_in_eval():
    m = actlab.get("rrelu(lower=0.1, upper=0.3)")
    x = -torch.ones(10000)
    m.train()
    slopes = -m(x)
    assert 0.1 <= slopes.min() and slopes.max() <= 0.3 and slopes.std() > 0.03
    m.eval()
    torch.testing.assert_close(m(x), torch.full_like(x, -0.2))
    torch.testing.assert_close(actlab.functional.rrelu(x, 0.1, 0.3), torch.full_like(x, -0.2))
    assert actlab.functional.rrelu(x, 0.1, 0.3, training=True).std() > 0.03


@pytest.mark.parametrize("name", actlab.names())
def test_pickle_round_trip(name):
    m = actlab.get(name, trainable=bool(actlab.spec(name).trainable_params) and name != "prelu")
    m2 = pickle.loads(pickle.dumps(m))
    x = _input_for(name)
    torch.testing.assert_close(m.eval()(x), m2.eval()(x))
    assert repr(m) == repr(m2)


def test_torch_save_load_whole_model():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), actlab.get("swish", trainable=True), torch.nn.Linear(4, 2))
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), loaded(x))


def test_positional_module_construction():
    assert actlab.nn.LeakyReLU(0.2).values == {"negative_slope": 0.2}
    assert actlab.nn.Swish(beta=2.0).values == {"beta": 2.0}
    with pytest.raises(actlab.InvalidParameterError, match="given twice"):
        actlab.nn.LeakyReLU(0.2, negative_slope=0.3)


def test_module_derivative_uses_per_channel_prelu_slopes():
    m = actlab.get("prelu", num_parameters=3)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.0, 0.2, 0.5]))
    d = m.derivative(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    torch.testing.assert_close(d, torch.tensor([[0.0, 0.2, 0.5], [1.0, 1.0, 1.0]]))
    with pytest.raises(TypeError, match="elementwise"):
        actlab.get("swiglu").derivative(torch.zeros(2, 4))


def test_factory_keywords_and_turning_inplace_off_after_construction():
    """nn.PReLU(device=..., dtype=...) is how PyTorch's module tests build it; hooks code sets inplace = False on an
    existing module before it registers hooks (the flag was bound once and then ignored)."""
    prelu = actlab.nn.PReLU(num_parameters=3, device="cpu", dtype=torch.float64)
    assert prelu.weight.dtype == torch.float64 and prelu.weight.shape == (3,)
    assert actlab.get("acon", num_parameters=4, dtype=torch.float64).p1.dtype == torch.float64
    relu = actlab.get("relu", inplace=True)
    x = torch.randn(5)
    assert relu(x).data_ptr() == x.data_ptr()
    relu.inplace = False
    x = torch.tensor([-1.0, 2.0])
    y = relu(x)
    assert y.data_ptr() != x.data_ptr() and x.tolist() == [-1.0, 2.0] and "inplace" not in repr(relu)


def test_learned_parameters_have_the_papers_shapes():
    assert [(n, tuple(p.shape)) for n, p in actlab.get("pau").named_parameters()] == [
        ("numerator", (6,)), ("denominator", (4,))]
    assert {tuple(p.shape) for p in actlab.get("srelu", num_parameters=8).parameters()} == {(8,)}
    assert {tuple(p.shape) for p in actlab.get("xielu").parameters()} == {()}  # one pair per layer
    conv = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(actlab.get("snake", num_parameters=8)(conv), conv + torch.sin(0.5 * conv) ** 2 / 0.5)
    a = actlab.get("acon", num_parameters=8)
    a(conv).sum().backward()
    assert a.p1.grad.shape == (8,) and a.beta.grad.shape == (8,)


def test_per_channel_derivative_and_a_channel_count_that_does_not_fit():
    """derivative() applied per-channel parameters along the last dimension (another channel's values, or a size
    error); a module built for 3 channels on a 4-channel input named an internal (3, 1) view."""
    for name in ("acon", "apl", "srelu"):
        module = actlab.get(name, num_parameters=3)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.linspace(0.0, 0.3, 3))  # the channels differ
        for shape in ((2, 3), (2, 3, 3), (2, 3, 4, 4)):
            x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
            (g,) = torch.autograd.grad(module.double()(x).sum(), x)
            torch.testing.assert_close(module.derivative(x.detach()), g)
    with pytest.raises(actlab.ShapeError, match=r"acon: parameter 'p1' holds 3 channels' values \(num_parameters = 3\)"
                                                r" but the input of shape \(2, 4, 5\) has 4 channels on dim 1"):
        actlab.get("acon", num_parameters=3)(torch.randn(2, 4, 5))
