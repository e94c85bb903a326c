"""swap_calls: activation functions called inside forward, found by running the model and replaced."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actlab
from actlab.swap_calls import CallSite, find_calls, swap_calls


class Custom(nn.Module):
    """Functional calls of every role, a module activation, and an in-place call whose result is ignored."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.gate = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.out = nn.Linear(16, 2)
        self.act = nn.GELU()
        self.block = Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.fc1(x))
        h = self.act(self.fc2(h)).relu()
        h = h * torch.sigmoid(self.gate(h))
        F.relu(h, inplace=True)
        h = self.block(h)
        return torch.tanh(self.out(h))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.silu(self.fc(x))


def _model() -> Custom:
    torch.manual_seed(0)
    return Custom()


def _by_hand(m: Custom, x: torch.Tensor, f) -> torch.Tensor:
    """What the model computes once every hidden function call is ``f`` (the module activation untouched)."""
    h = f(m.fc1(x))
    h = f(m.act(m.fc2(h)))
    h = f(h * torch.sigmoid(m.gate(h)))
    h = h + f(m.block.fc(h))
    return torch.tanh(m.out(h))


X = torch.randn(5, 8)


def test_find_calls_lists_each_call_site_with_its_role_outside_activation_modules():
    sites = find_calls(_model(), X)
    assert sites == [
        CallSite("", "gelu", "hidden", 1), CallSite("", "relu", "hidden", 2), CallSite("", "sigmoid", "gate", 1),
        CallSite("", "tanh", "output", 1), CallSite("block", "swish", "hidden", 1),
    ]  # nn.GELU's own F.gelu call is the module's, not a site
    assert [s.function for s in find_calls(_model(), X, roles="hidden", where="block")] == ["swish"]


def test_swap_calls_replaces_the_hidden_calls_and_matches_the_model_written_by_hand():
    m = _model()
    assert swap_calls(m, "mish", X, dry_run=True) == 3
    assert not any(isinstance(c, actlab.nn.Mish) for c in m.modules())
    assert swap_calls(m, "mish", X) == 3
    assert isinstance(m.gelu_swapped, actlab.nn.Mish) and isinstance(m.block.swish_swapped, actlab.nn.Mish)
    torch.testing.assert_close(m(X), _by_hand(m, X, F.mish))
    m(X).sum().backward()  # the in-place call keeps autograd correct
    assert m.fc1.weight.grad is not None and torch.isfinite(m.fc1.weight.grad).all()
    assert [s.function for s in find_calls(m, X)] == ["sigmoid", "tanh"]  # what is left: the gate and the output


def test_a_mapping_replaces_by_function_and_exclude_drops_a_module():
    m = _model()
    assert swap_calls(m, {"relu": "leaky_relu(negative_slope=0.2)"}, X) == 1
    assert swap_calls(m, "elu", X, exclude="block") == 1  # gelu at the top; block's silu excluded
    assert isinstance(m.gelu_swapped, actlab.nn.ELU) and not hasattr(m.block, "swish_swapped")


def test_trainable_parameters_belong_to_the_model_and_copies_route_to_their_own():
    m = _model()
    assert swap_calls(m, "swish(beta=1.0, trainable=True)", X) == 3
    names = {n for n, _ in m.named_parameters()}
    assert {"gelu_swapped.beta", "relu_swapped.beta", "block.swish_swapped.beta"} <= names
    assert "gelu_swapped.beta" in m.state_dict()
    before = m(X).detach()
    twin = copy.deepcopy(m)
    with torch.no_grad():
        twin.block.swish_swapped.beta.fill_(3.0)
    assert not torch.allclose(twin(X), before)
    torch.testing.assert_close(m(X), before)  # the original still uses its own beta
    buffer = io.BytesIO()
    torch.save(twin, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded(X), twin(X))


def test_the_roles_option_reaches_gates_and_outputs():
    m = _model()
    assert swap_calls(m, "hardsigmoid", X, roles="gate") == 1
    assert swap_calls(m, "softsign", X, roles="output") == 1
    expected_out = F.softsign(m.out(_hidden_with_gate(m, X, F.hardsigmoid)))
    torch.testing.assert_close(m(X), expected_out)


def _hidden_with_gate(m: Custom, x: torch.Tensor, gate) -> torch.Tensor:
    h = F.gelu(m.fc1(x))
    h = F.relu(m.act(m.fc2(h)))
    h = F.relu(h * gate(m.gate(h)))
    return h + F.silu(m.block.fc(h))


def test_nothing_matched_warns_and_a_failing_forward_leaves_no_mode_behind():
    from actlab.swap_calls import _STACK

    m = _model()
    with pytest.warns(UserWarning, match="no activation call matched.*block:swish \\(hidden\\)"):
        assert swap_calls(m, "mish", X, where="block", roles="gate") == 0
    swap_calls(m, "mish", X)
    with pytest.raises(RuntimeError):
        m(torch.randn(3, 5))
    assert _STACK.modules == [] and _STACK.activations == 0
    x = torch.randn(3)
    assert torch.equal(F.gelu(x), torch.nn.functional.gelu(x))  # outside the model, nothing is routed


def test_swap_says_where_to_look_when_a_model_has_only_calls():
    class Calls(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return F.gelu(self.fc(x))

    with pytest.warns(UserWarning, match="swap_calls"):
        assert actlab.swap(Calls(), "mish") == 0


def test_bad_arguments_are_refused_before_anything_changes():
    m = _model()
    with pytest.raises(actlab.UnknownActivationError):
        swap_calls(m, "mishh", X)
    with pytest.raises(ValueError, match="gated"):
        swap_calls(m, "swiglu", X)
    with pytest.raises(TypeError, match="mapping key"):
        swap_calls(m, {nn.ReLU: "gelu"}, X)
    with pytest.raises(TypeError, match="to="):
        swap_calls(m, nn.Mish(), X)
    with pytest.raises(ValueError, match="roles"):
        swap_calls(m, "mish", X, roles="hiden")
    with pytest.raises(TypeError, match="where"):
        find_calls(m, X, where=3)
    assert not any(n.endswith("_swapped") for n, _ in m.named_modules())


@pytest.mark.slow
def test_torch_compile_gives_the_swapped_output():
    m = _model()
    swap_calls(m, "mish", X)
    torch.testing.assert_close(torch.compile(m)(X), _by_hand(m, X, F.mish))
