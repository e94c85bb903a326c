"""The actlab::activation custom op: opcheck (schema, fake impl, autograd registration), a model of actlab modules
under torch.compile(fullgraph=True) with the op in the graph, and backward keeping only the input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import actlab
from actlab.kernels import ops

CASES = [("swish", {"beta": 1.5}), ("gelu", {"approximate": "tanh"}), ("mish", {}), ("hardswish", {}),
         ("softsign", {}), ("squared_relu", {}), ("swiglu", {"beta": 1.0}), ("geglu", {}), ("reglu", {})]


@pytest.mark.parametrize("name,params", CASES)
def test_opcheck(name, params):
    spec = actlab.spec(name)
    encoded, weight = ops.encode(spec.resolve_params(params))
    x = torch.randn(6, 8, requires_grad=True)
    torch.library.opcheck(torch.ops.actlab.activation.default, (x, spec.name, encoded, weight))


def test_opcheck_with_a_trainable_weight():
    spec = actlab.spec("swish")
    beta = torch.tensor(1.3, requires_grad=True)
    encoded, weight = ops.encode(spec.resolve_params({"beta": beta}, tensor_ok=True))
    assert weight is beta
    x = torch.randn(5, 7, requires_grad=True)
    torch.library.opcheck(torch.ops.actlab.activation.default, (x, "swish", encoded, weight))
    y = ops.apply(spec, x, {"beta": beta})
    y.sum().backward()
    x2, b2 = x.detach().clone().requires_grad_(), beta.detach().clone().requires_grad_()
    (x2 * torch.sigmoid(b2 * x2)).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(beta.grad, b2.grad)


def test_custom_op_saves_only_the_input():
    saved = []
    x = torch.randn(64, 32, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = ops.apply(actlab.spec("swish"), x, {"beta": 1.5})
    assert len(saved) == 1 and saved[0].shape == x.shape
    saved.clear()
    xg = torch.randn(64, 32, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        ops.apply(actlab.spec("swiglu"), xg, {"beta": 1.0})
    assert len(saved) == 1 and saved[0].shape == xg.shape
    del y


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(8, 32)
        self.act1 = actlab.get("swish", beta=1.5, trainable=True)
        self.mid = nn.Linear(32, 32)
        self.act2 = actlab.get("mish")
        self.gate = nn.Linear(32, 32)
        self.glu = actlab.get("swiglu")
        self.act3 = actlab.get("gelu(approximate='tanh')")
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        h = self.act2(self.mid(self.act1(self.up(x))))
        return self.out(self.act3(self.glu(self.gate(h))))


def test_model_compiles_with_fullgraph_and_matches_eager():
    torch.manual_seed(0)
    model = _Block()
    x = torch.randn(16, 8)
    targets = []

    def backend(gm, example_inputs):
        targets.extend(node.target for node in gm.graph.nodes if node.op == "call_function")
        return gm.forward

    compiled = torch.compile(model, backend=backend, fullgraph=True)
    out = compiled(x)
    assert targets.count(torch.ops.actlab.activation.default) == 4  # swish, mish, swiglu, gelu-tanh
    eager = model(x)
    torch.testing.assert_close(out, eager)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    eager.square().sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, msg=n)
    assert grads["act1.beta"].abs() > 0


@pytest.mark.slow
def test_model_compiles_with_inductor_fullgraph():
    torch.manual_seed(0)
    model = _Block()
    x = torch.randn(16, 8)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, model(x))
    out.sum().backward()
    assert model.act1.beta.grad is not None
