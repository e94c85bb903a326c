"""swap and the timm plug-in on real vision models (torchvision and timm, random weights, nothing downloaded).

Each swap is checked against an independent count: the model is traced with torch.fx, activation modules (and
activation functions) as leaves, and every call is counted before and after. A module called twice (torchvision's
ResNet blocks call ``self.relu`` twice) is one site. The squeeze-excitation gates must survive as they were.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from conftest import import_torchvision
from torch import nn

import actlab
from actlab.swap import TORCH_ACTIVATIONS, find_activations

torchvision = import_torchvision()
if torchvision is None:
    pytest.skip("torchvision is not installed", allow_module_level=True)
timm = pytest.importorskip("timm")

_FUNCTIONS = {F.relu, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, torch.sigmoid, F.relu6, F.mish}


def _is_activation(m: nn.Module) -> bool:
    """torch's activation classes, actlab's, and timm's own (defined in timm.layers.activations*)."""
    return isinstance(m, (*TORCH_ACTIVATIONS, actlab.nn.Activation)) or \
        type(m).__module__.startswith("timm.layers.activations")


class _ActivationLeaves(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _is_activation(m) or super().is_leaf_module(m, qualname)


def _traced_calls(model: nn.Module) -> tuple[Counter, set[str], set[str]]:
    """(calls by class or function name, paths of the activation modules called, paths of the gates: sigmoid-like
    modules whose output multiplies another tensor) from an fx trace."""
    graph = _ActivationLeaves().trace(model)
    modules = dict(model.named_modules())
    calls: Counter = Counter()
    called, multiplied = set(), set()
    for node in graph.nodes:
        if node.op == "call_module" and _is_activation(modules[node.target]):
            calls[type(modules[node.target]).__name__] += 1
            called.add(node.target)
            gating = type(modules[node.target]).__name__.lower() in ("sigmoid", "hardsigmoid")
            if gating and any(u.target in ("mul", "mul_") or getattr(u.target, "__name__", "") in ("mul", "mul_")
                   for u in node.users):
                multiplied.add(node.target)
        elif node.op == "call_function" and node.target in _FUNCTIONS:
            calls[node.target.__name__] += 1
    return calls, called, multiplied


MODELS = {
    # name: (builder, activation sites, squeeze-excitation gates)
    "torchvision.resnet18": (lambda: torchvision.models.resnet18(), 9, 0),
    "torchvision.mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(), 42, 9),
    "torchvision.efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), 65, 16),
    "timm.resnet18": (lambda: timm.create_model("resnet18"), 17, 0),
    "timm.mobilenetv3_small_100": (lambda: timm.create_model("mobilenetv3_small_100"), 42, 9),
    "timm.efficientnet_b0": (lambda: timm.create_model("efficientnet_b0"), 65, 16),
    "timm.seresnet18": (lambda: timm.create_model("seresnet18"), 33, 8),
    # layer scale starts at 1 (not 1e-6) so that the blocks, and their activations, change the output at init
    "timm.convnext_atto": (lambda: timm.create_model("convnext_atto", ls_init_value=1.0), 12, 0),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_swap_replaces_every_hidden_activation_the_trace_calls_and_keeps_the_gates(name):
    build, n_sites, n_gates = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    calls_before, called, multiplied = _traced_calls(model)
    assert len(called) == n_sites and len(multiplied) == n_gates  # the trace agrees with the published counts
    assert {s.path for s in find_activations(model)} == called
    gates = {s.path: s.current for s in find_activations(model, roles="gate")}
    assert set(gates) == multiplied

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    assert actlab.swap(model, "mish", dry_run=True) == n_sites - n_gates
    assert actlab.swap(model, "mish") == n_sites - n_gates

    calls_after, called_after, multiplied_after = _traced_calls(model)
    assert called_after == called and multiplied_after == multiplied
    assert sum(calls_after.values()) == sum(calls_before.values())  # every call still happens, once each
    modules = dict(model.named_modules())
    for path in called:
        if path in gates:
            assert modules[path] is gates[path]
        else:
            assert isinstance(modules[path], actlab.nn.Mish)
    with torch.no_grad():
        after = model(x)
    assert after.shape == before.shape and torch.isfinite(after).all()
    assert not torch.allclose(after, before, rtol=1e-3, atol=0)


def test_swap_with_the_gates_included_replaces_them_too():
    model = torchvision.models.mobilenet_v3_small()
    assert actlab.swap(model, "hardsigmoid", roles="gate") == 9
    assert actlab.swap(model, "gelu", roles=("hidden", "gate")) == 42


def test_timm_builds_a_model_with_an_actlab_activation_by_name():
    from actlab.integrations.timm import register

    register()
    register()  # idempotent
    model = timm.create_model("resnet18", act_layer="actlab:swish(beta=1.5, trainable=True)")
    acts = [m for m in model.modules() if isinstance(m, actlab.nn.Swish)]
    assert len(acts) == 17 and all(isinstance(a.beta, nn.Parameter) and a.beta.item() == 1.5 for a in acts)
    assert len({id(a.beta) for a in acts}) == 17  # one parameter per site, never shared
    y = model(torch.randn(2, 3, 32, 32))
    y.sum().backward()
    assert acts[0].beta.grad is not None

    layer = timm.layers.create_act_layer("actlab:mish", inplace=True)
    assert isinstance(layer, actlab.nn.Mish) and layer.inplace
    fn = timm.layers.get_act_fn("actlab:gelu(approximate='tanh')")
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(fn(x), F.gelu(x, approximate="tanh"))
    # timm's own names are untouched
    assert timm.layers.get_act_layer("relu") is nn.ReLU


def test_timm_plug_in_errors_name_the_problem():
    from actlab.integrations.timm import function, layer, register

    register()
    with pytest.raises(actlab.UnknownActivationError, match="swissh"):
        timm.layers.get_act_layer("actlab:swissh")
    with pytest.raises(ValueError, match="trainable"):
        function("swish(trainable=True)")
    with pytest.raises(actlab.errors.InvalidParameterError, match="beta"):
        layer("swish(beta=-inf)")
    with pytest.raises(KeyError):
        timm.layers.get_act_layer("not_an_activation")
    # a gated kind halves the width: refused where timm asks for it, not as a shape error inside the model
    with pytest.raises(ValueError, match="'swiglu' is gated"):
        timm.layers.create_act_layer("actlab:swiglu")
    with pytest.raises(ValueError, match="'swiglu' is gated"):
        timm.create_model("resnet18", act_layer="actlab:swiglu")
    with pytest.raises(ValueError, match="'geglu' is gated"):
        timm.layers.get_act_fn("actlab:geglu")
    with pytest.raises(ValueError, match="normalizing"):
        layer("softmax")


def test_a_layer_factory_works_without_registering():
    from actlab.integrations.timm import layer

    model = timm.create_model("convnext_atto", act_layer=layer("squared_relu"))
    assert sum(isinstance(m, actlab.nn.SquaredReLU) for m in model.modules()) == 12
