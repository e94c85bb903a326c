"""Names, aliases, the string form, third-party registration and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import actlab
from actlab.catalog.spec import ActivationSpec, Param

DESIGN_NAMES = {
    "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "swish", "mish",
    "softplus", "threshold_relu", "relu6", "hardsigmoid", "hardswish", "softsign", "log_sigmoid", "squared_relu",
    "identity", "glu", "reglu", "geglu", "swiglu", "softmax",
}


def test_names_cover_design_and_are_sorted():
    names = actlab.names()
    assert names == sorted(names)
    assert DESIGN_NAMES <= set(names)


@pytest.mark.parametrize("alias,canonical", [
    ("SiLU", "swish"), ("silu", "swish"), ("LeakyReLU", "leaky_relu"), ("leaky-relu", "leaky_relu"),
    ("Leaky ReLU", "leaky_relu"), ("GELU", "gelu"), ("LogSigmoid", "log_sigmoid"), ("hard_swish", "hardswish"),
    ("ReLU6", "relu6"), ("SwiGLU", "swiglu"), ("gelu_tanh", "gelu"),
])
def test_aliases_resolve(alias, canonical):
    assert actlab.spec(alias).name == canonical


def test_every_spec_is_complete():
    for name in actlab.names():
        s = actlab.spec(name)
        assert s.formula and s.references and s.kind in ("elementwise", "gated", "normalizing")
        for pname, p in s.params.items():
            assert isinstance(p, Param) and p.doc, (name, pname)
            s.resolve_params({pname: p.default})  # defaults are inside their own domain


def test_silu_is_swish_beta_one_and_gelu_tanh_preset():
    x = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(actlab.get("silu")(x), torch.nn.functional.silu(x))
    assert actlab.get("silu").values["beta"] == 1.0
    assert actlab.get("gelu_tanh").values["approximate"] == "tanh"


def test_string_form_matches_keywords():
    a, b = actlab.get("swish(beta=1.5)"), actlab.get("swish", beta=1.5)
    assert a.values == b.values == {"beta": 1.5}
    assert actlab.get("leaky_relu(0.2)").values == {"negative_slope": 0.2}
    assert actlab.get("rrelu(lower=1/8, upper=1/4)").values == {"lower": 0.125, "upper": 0.25}
    assert actlab.get("gelu(approximate=tanh)").values == {"approximate": "tanh"}
    assert actlab.get("gelu(approximate='tanh')").values == {"approximate": "tanh"}


def test_unknown_name_suggests_the_closest():
    with pytest.raises(actlab.UnknownActivationError, match="did you mean 'swish'") as info:
        actlab.spec("swihs")
    assert "swish" in info.value.suggestions
    with pytest.raises(actlab.UnknownActivationError, match="leaky_relu"):
        actlab.get("leaky_rleu")
    with pytest.raises(actlab.UnknownActivationError):
        actlab.functional.apply("nonsense_activation", torch.zeros(2))


@pytest.mark.parametrize("text,pattern", [
    ("softplus(beta=0)", r"softplus: parameter 'beta' = 0\.0 .*0 < beta"),
    ("softplus(beta=-1)", r"softplus: parameter 'beta' = -1\.0"),
    ("rrelu(lower=0.5, upper=0.3)", r"rrelu: parameter 'lower' = 0\.5 .*lower must be <= upper"),
    ("swish(alpha=1)", r"swish: parameter 'alpha' = 1 .*no parameter 'alpha'.*beta"),
    ("swish(beta='big')", r"swish: parameter 'beta' = 'big' .*finite number"),
    ("swish(beta=True)", r"swish: parameter 'beta' = True"),
    ("swish(beta=1, beta=2)", r"given twice"),
    ("leaky_relu(negative_slope=2)", r"leaky_relu: parameter 'negative_slope' = 2\.0 .*<= 1"),
    ("gelu(approximate='fast')", r"gelu: parameter 'approximate' = 'fast' .*'none', 'tanh'"),
    ("prelu(num_parameters=2.5)", r"prelu: parameter 'num_parameters' = 2\.5 .*integer"),
    ("prelu(num_parameters=0)", r"prelu: parameter 'num_parameters' = 0"),
    ("celu(alpha=0)", r"celu: parameter 'alpha' = 0\.0"),
    ("relu(1)", r"relu takes at most 0 positional"),
    ("silu(beta=2)", r"fixes beta = 1\.0"),
    ("softplus(threshold=nan)", r"softplus: parameter 'threshold' = 'nan'"),
])
def test_bad_parameters_name_activation_parameter_value_and_domain(text, pattern):
    with pytest.raises(actlab.InvalidParameterError, match=pattern) as info:
        actlab.get(text)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["swish(beta=)", "swish(beta=1.5", "swish(beta==1)", "(beta=1)", "swish(**x)",
                                  "swish(beta=[1])", "swish(beta=1/0)", "swish)("])
def test_malformed_strings(text):
    with pytest.raises(actlab.ActivationSyntaxError, match="cannot parse activation"):
        actlab.get(text)


def test_bad_parameters_in_keywords_and_functional():
    with pytest.raises(actlab.InvalidParameterError, match="softplus: parameter 'beta' = 0"):
        actlab.get("softplus", beta=0)
    with pytest.raises(actlab.InvalidParameterError, match="softplus: parameter 'beta'"):
        actlab.functional.softplus(torch.zeros(3), beta=-2.0)
    with pytest.raises(actlab.InvalidParameterError, match="trainable parameters of swish: beta"):
        actlab.get("swish", trainable=["alpha"])
    with pytest.raises(actlab.InvalidParameterError, match="relu has no parameter that can be trained"):
        actlab.get("relu", trainable=True)
    with pytest.raises(TypeError, match=r"swish\(x.*beta=1\.0\).*too many"):
        actlab.functional.swish(torch.zeros(2), 1.0, 2.0)


def _third_party(name="my_bent_unit"):
    return ActivationSpec(
        name=name,
        formula=r"f(x) = \frac{\sqrt{x^2 + 1} - 1}{2} + x",
        summary="Bent identity (test plugin).",
        references=(actlab.Reference("Anonymous", "Bent identity", 2016),),
        reference=lambda x: (np.sqrt(np.asarray(x) ** 2 + 1) - 1) / 2 + np.asarray(x),
        derivative=lambda x: np.asarray(x) / (2 * np.sqrt(np.asarray(x) ** 2 + 1)) + 1,
        torch_forward=lambda x: (torch.sqrt(x * x + 1) - 1) / 2 + x,
        torch_derivative=lambda x: x / (2 * torch.sqrt(x * x + 1)) + 1,
    )


def test_register_third_party_everywhere():
    spec = actlab.register(_third_party())
    try:
        assert "my_bent_unit" in actlab.names()
        x = torch.linspace(-3, 3, 7, dtype=torch.float64, requires_grad=True)
        y = actlab.functional.my_bent_unit(x)
        np.testing.assert_allclose(y.detach().numpy(), spec.reference(x.detach().numpy()))
        module = actlab.get("MyBentUnit")
        assert type(module).__name__ == "MyBentUnit" and isinstance(module, actlab.Activation)
        assert torch.autograd.gradcheck(actlab.functional.my_bent_unit, (x,))
        assert spec.properties.monotonic is True
        with pytest.raises(ValueError, match="already"):
            actlab.register(_third_party())
    finally:
        actlab.unregister("my_bent_unit")
    assert "my_bent_unit" not in actlab.names()


def test_register_rejects_alias_collisions_and_non_specs():
    with pytest.raises(ValueError, match="belongs to 'swish'"):
        actlab.register(ActivationSpec(**{**_third_party("x_act").__dict__, "aliases": ("silu",)}))
    with pytest.raises(TypeError):
        actlab.register("relu")


def test_register_runs_the_expression_once_and_refuses_a_wrong_one():
    """A torch_forward that fails, or returns a scalar, an array or another dtype, was registered and then failed
    (or silently returned a scalar) at a user's first call."""
    base = _third_party("probe_act").__dict__
    cases = [(lambda x: x.sum(), r"returned a torch.float64 tensor of shape \(\); expected a float64 tensor of "
              r"shape \(2, 4\)"),
             (lambda x: x.numpy(), "returned ndarray"),
             (lambda x: x.float(), "returned a torch.float32 tensor"),
             (lambda x: x.no_such_method(), r"failed \(AttributeError")]
    for fn, message in cases:
        with pytest.raises(ValueError, match=f"cannot register 'probe_act': torch_forward on a \\(2, 4\\) .*{message}"):
            actlab.register(ActivationSpec(**{**base, "torch_forward": fn}))
        assert "probe_act" not in actlab.names()
    with pytest.raises(ValueError, match="torch_forward = None; it is required"):
        ActivationSpec(**{**base, "torch_forward": None})


def test_a_derivative_that_ignores_a_parameter_is_refused():
    """verify_spec checked the derivative at the defaults only: a swish whose derivative ignores beta agreed there
    (beta = 1) and trained on wrong gradients at any other beta."""
    spec = ActivationSpec(
        name="myswish", formula="x s(beta x)", references=_third_party().references,
        params={"beta": Param(1.0, low=0.0, doc="beta")},
        torch_forward=lambda x, beta: x * torch.sigmoid(beta * x),
        torch_derivative=lambda x, beta: torch.sigmoid(x) * (1 + x * torch.sigmoid(-x)))
    with pytest.raises(ValueError, match=r"cannot register 'myswish': its derivative disagrees with its forward at "
                                         r"x = .* \({'beta': 1.75}\)"):
        actlab.register(spec)
    assert "myswish" not in actlab.names()
