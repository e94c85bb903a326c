"""actlab.swap on a CNN, an nn.Sequential MLP and a transformer block; where-selection; compile."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actlab


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.LeakyReLU(0.1), nn.Dropout(0.1),
                                  nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.features(x))


def mlp():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 3))


def test_cnn_swap_counts_and_runs():
    model = SmallCNN()
    n = actlab.swap(model, "swish")
    assert n == 3
    acts = [m for m in model.modules() if isinstance(m, actlab.Activation)]
    assert len(acts) == 3 and all(a.spec.name == "swish" for a in acts)
    assert not any(isinstance(m, (nn.ReLU, nn.LeakyReLU)) for m in model.modules())
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_sequential_mlp_and_where_by_class_glob_and_predicate():
    model = mlp()
    assert actlab.swap(model, "mish", where=nn.ReLU) == 1
    assert isinstance(model[1], actlab.nn.Mish) and isinstance(model[3], nn.GELU)
    assert actlab.swap(model, "elu", where="3") == 1 and isinstance(model[3], actlab.nn.ELU)
    assert actlab.swap(model, "selu", where=lambda path, m: isinstance(m, nn.Tanh)) == 1
    assert actlab.swap(model, "relu") == 3  # actlab modules are activations too
    assert model(torch.randn(5, 10)).shape == (5, 3)


def test_each_site_gets_its_own_module():
    model = mlp()
    actlab.swap(model, "prelu(num_parameters=1)")
    prelus = [m for m in model.modules() if isinstance(m, actlab.nn.PReLU)]
    assert len(prelus) == 3
    assert len({id(p.weight) for p in prelus}) == 3
    template = actlab.get("swish", trainable=True)
    actlab.swap(model, template)
    swishes = [m for m in model.modules() if isinstance(m, actlab.nn.Swish)]
    assert len({id(s.beta) for s in swishes}) == 3 and all(s is not template for s in swishes)


def test_swap_keeps_device_and_dtype():
    model = mlp().to(torch.float64)
    actlab.swap(model, "swish", )
    actlab.swap(model, "swish", )  # swapping actlab modules again keeps working
    actlab.swap(model, "swish(beta=1.0)")
    model2 = mlp().to(torch.float64)
    actlab.swap(model2, actlab.get("swish", trainable=True))
    for m in model2.modules():
        if isinstance(m, actlab.nn.Swish):
            assert m.beta.dtype == torch.float64
    assert model2(torch.randn(2, 10, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("activation", ["relu", "gelu", F.gelu, F.relu, nn.GELU(), "module_relu"])
def test_transformer_encoder_layer(activation):
    if activation == "module_relu":
        activation = nn.ReLU()
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, activation=activation, batch_first=True)
    x = torch.randn(2, 5, 16)
    layer.eval()
    n = actlab.swap(layer, "swish")
    assert n == 1
    assert isinstance(layer.activation, actlab.nn.Swish)
    with torch.no_grad():
        y = layer(x)
        # Recompute by hand: the swapped activation must be what runs, also on the inference fast path.
        h = layer.norm1(x + layer.self_attn(x, x, x, need_weights=False)[0])
        ff = layer.linear2(actlab.functional.swish(layer.linear1(h)))
        expect = layer.norm2(h + ff)
    torch.testing.assert_close(y, expect, rtol=1e-5, atol=1e-5)


def test_transformer_stack_and_library_style_classes():
    class GELUActivation(nn.Module):  # transformers' name
        def forward(self, x):
            return F.gelu(x)

    class MemoryEfficientSwish(nn.Module):  # timm/efficientnet's name
        def forward(self, x):
            return x * torch.sigmoid(x)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act = nn.Linear(4, 4), GELUActivation()
            self.fc2, self.act2 = nn.Linear(4, 4), MemoryEfficientSwish()

        def forward(self, x):
            return self.act2(self.fc2(self.act(self.fc1(x))))

    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), num_layers=3,
                                enable_nested_tensor=False)
    assert actlab.swap(enc, "mish") == 3
    block = Block()
    assert actlab.swap(block, "relu") == 2


def test_nothing_else_is_touched_and_bad_to():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(), nn.Identity(), nn.LayerNorm(3), nn.Softmax(dim=-1))
    before = [type(m) for m in model]
    with pytest.warns(UserWarning, match="no activation matched"):
        assert actlab.swap(model, "relu", where=lambda p, m: not isinstance(m, nn.Softmax)) == 0
    assert [type(m) for m in model] == before
    with pytest.raises(actlab.UnknownActivationError):
        actlab.swap(mlp(), "nonsense")
    model = mlp()
    with pytest.raises(actlab.InvalidParameterError):
        actlab.swap(model, "swish(beta=-1)")
    assert isinstance(model[1], nn.ReLU)  # nothing half-written


def test_state_dict_round_trip_after_swap():
    model = mlp()
    actlab.swap(model, actlab.get("swish", trainable=True))
    sd = model.state_dict()
    assert {k for k in sd if k.endswith("beta")} == {"1.beta", "3.beta", "5.beta"}
    model2 = mlp()
    actlab.swap(model2, actlab.get("swish", trainable=True))
    model2.load_state_dict(sd)
    x = torch.randn(4, 10)
    torch.testing.assert_close(model(x), model2(x))


@pytest.mark.slow
def test_torch_compile_of_a_model_with_actlab_modules():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), actlab.get("swish(beta=1.5)"), nn.Linear(16, 16), actlab.get("mish"),
                          nn.Linear(16, 16), actlab.get("gelu"), nn.Linear(16, 4))
    x = torch.randn(32, 8)
    eager = model(x)
    compiled = torch.compile(model)
    out = compiled(x)
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ----- roles: gates and output nonlinearities are kept by default --------------------------------------------------


class SqueezeExcitation(nn.Module):
    """torchvision's block, written out: the hard-sigmoid scales the features."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = nn.ReLU(), nn.Hardsigmoid()

    def forward(self, x):
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x))))) * x


class GatedMLP(nn.Module):
    """LLaMA's MLP: the SiLU's output multiplies another projection, yet it is the hidden activation."""

    def __init__(self):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = nn.Linear(8, 16), nn.Linear(8, 16), nn.Linear(16, 8)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class Untraceable(nn.Module):
    """Data-dependent control flow (fx cannot trace it): names decide the roles."""

    def __init__(self):
        super().__init__()
        self.dense, self.hidden, self.gate = nn.Linear(4, 4), nn.GELU(), nn.Sigmoid()
        self.pooler = nn.Sequential(nn.Linear(4, 4), nn.Tanh())

    def forward(self, x):
        h = self.hidden(self.dense(x))
        if h.sum() > 0:
            h = h * self.gate(h)
        return self.pooler(h)


def _se_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Hardswish(), SqueezeExcitation(8, 4), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1), nn.Sigmoid())


def test_gates_and_output_nonlinearities_are_kept_by_default():
    from actlab.swap import find_activations

    model = _se_net()
    roles = {s.path: s.role for s in find_activations(model)}
    assert roles == {"1": "hidden", "2.activation": "hidden", "2.scale_activation": "gate", "4": "hidden",
                     "8": "output"}
    assert actlab.swap(model, "gelu", dry_run=True) == 3 and isinstance(model[1], nn.Hardswish)  # nothing changed
    assert actlab.swap(model, "gelu") == 3
    assert isinstance(model[2].scale_activation, nn.Hardsigmoid) and isinstance(model[8], nn.Sigmoid)
    assert isinstance(model[1], actlab.nn.GELU) and isinstance(model[2].activation, actlab.nn.GELU)
    assert model(torch.randn(2, 3, 9, 9)).shape == (2, 1)
    every = _se_net()
    assert actlab.swap(every, "gelu", roles=("hidden", "gate", "output")) == 5


def test_a_gated_mlps_activation_is_hidden_and_names_decide_when_fx_cannot_trace():
    from actlab.swap import find_activations

    mlp_block = GatedMLP()
    assert [s.role for s in find_activations(mlp_block)] == ["hidden"]
    assert actlab.swap(mlp_block, "gelu") == 1  # SwiGLU becomes GEGLU
    model = Untraceable()
    assert {s.path: s.role for s in find_activations(model)} == {"hidden": "hidden", "gate": "gate",
                                                                  "pooler.1": "output"}
    assert actlab.swap(model, "mish") == 1 and isinstance(model.hidden, actlab.nn.Mish)


def test_include_exclude_mapping_and_bad_where():
    model = mlp()
    assert actlab.swap(model, "elu", exclude=nn.GELU) == 2 and isinstance(model[3], nn.GELU)
    model = mlp()
    assert actlab.swap(model, {nn.ReLU: "gelu", "tanh": "mish"}) == 2
    assert isinstance(model[1], actlab.nn.GELU) and isinstance(model[3], nn.GELU)
    assert isinstance(model[5], actlab.nn.Mish)
    for bad in (3, 2.5, ["relu"], (nn.ReLU, "x")):
        with pytest.raises(TypeError, match="where="):
            actlab.swap(mlp(), "gelu", where=bad)
    with pytest.raises(ValueError, match="roles="):
        actlab.swap(mlp(), "gelu", roles=("hiden",))
    with pytest.warns(UserWarning, match="no activation matched"):
        assert actlab.swap(mlp(), "gelu", where="nothing.*") == 0


def test_gated_kinds_are_refused_with_the_reason():
    model = mlp()
    with pytest.raises(ValueError, match="halves the last dimension"):
        actlab.swap(model, "swiglu")
    assert isinstance(model[1], nn.ReLU)  # nothing half-written
    with pytest.raises(ValueError, match="softmax is normalizing: .* not a hidden activation"):
        actlab.swap(model, "softmax")  # it swapped every ReLU for a softmax over the features
    assert isinstance(model[1], nn.ReLU)
