"""actlab.monitor (every=1 here, each step observed, unless a test says otherwise): per-site statistics against
hand-computed values, sampling and windows, every kind of site, no host sync per step, warnings, loggers, displays and
bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ELEMENTWISE
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import actlab
from actlab.monitor import ActivationHealthWarning, ActivationMonitor
from actlab.monitor.sites import discover


def _relu_model() -> nn.Sequential:
    """4 -> 3 -> 1 with ReLU; unit 2's weights and bias make it negative for every input with x >= 0."""
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0, 0.5, 0.0], [0.3, 0.2, -0.4, 1.0], [-1.0, -1.0, -1.0, -1.0]]))
        model[0].bias.copy_(torch.tensor([0.1, -0.2, -0.5]))
        model[2].weight.copy_(torch.tensor([[0.7, -0.3, 0.9]]))
        model[2].bias.zero_()
    return model


def _batches(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(5, 4, generator=g) for _ in range(n)]


def _train(model: nn.Module, batches: list[torch.Tensor], backward: bool = True) -> None:
    for x in batches:
        loss = model(x).pow(2).sum()
        if backward:
            loss.backward()


def test_statistics_match_hand_computed_values():
    model, batches = _relu_model(), _batches(3)
    with actlab.monitor(model, window=None, every=1) as mon:
        _train(model, batches)
    row = mon.summary().set_index("site").loc["1"]
    # by hand, on an unhooked copy: pre-activations, outputs and dL/dy per step
    reference = _relu_model()
    pre, out, norms = [], [], []
    for x in batches:
        z = reference[0](x)
        y = torch.relu(z)
        y.retain_grad()
        reference[2](y).pow(2).sum().backward()
        pre.append(z.detach())
        out.append(y.detach())
        norms.append(float(y.grad.norm()))
    z, y = torch.cat(pre).double(), torch.cat(out).double()
    assert row["units"] == 3 and row["observations"] == 3
    assert row["dead"] == pytest.approx(float((z <= 0).all(0).double().mean()))
    assert row["dead"] == pytest.approx(1 / 3)  # unit 2 never fires
    assert row["saturated"] == pytest.approx(float((z <= 0).double().mean()))
    assert row["in_mean"] == pytest.approx(float(z.mean()), rel=1e-6)
    assert row["in_std"] == pytest.approx(float(z.std(correction=0)), rel=1e-6)
    assert row["out_mean"] == pytest.approx(float(y.mean()), rel=1e-6)
    assert row["out_std"] == pytest.approx(float(y.std(correction=0)), rel=1e-6)
    assert row["grad_norm"] == pytest.approx(np.mean(norms), rel=1e-6)


def test_saturation_uses_the_derivative_and_its_threshold():
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 0.01], [-10.0, 0.0], [0.0, -0.01]]))
        model[0].bias.zero_()
    x = torch.tensor([[1.0, 1.0], [-1.0, 2.0], [0.8, -1.0]])
    for threshold in (0.01, 0.2):
        mon = actlab.monitor(model, saturation=threshold, window=None, every=1)
        model(x).sum().backward()
        mon.stop()
        z = model[0](x).detach()
        d = torch.sigmoid(z) * (1 - torch.sigmoid(z))
        assert mon.summary()["saturated"][0] == pytest.approx(float((d < threshold).double().mean()))
        assert mon.summary()["dead"][0] == 0.0  # a sigmoid's derivative is never exactly zero here


def test_torch_module_parameters_decide_the_derivative():
    # LeakyReLU(0): a ReLU, with a dead unit; at its default slope no unit is ever dead
    for slope, dead in ((0.0, 1 / 3), (0.01, 0.0)):
        model = _relu_model()
        model[1] = nn.LeakyReLU(slope)
        with actlab.monitor(model, every=1) as mon:
            _train(model, _batches(2))
        assert mon.summary()["dead"][0] == pytest.approx(dead)


def test_inplace_relu_reads_the_input_before_it_is_overwritten():
    model = _relu_model()
    model[1] = nn.ReLU(inplace=True)
    with actlab.monitor(model, every=1) as mon:
        _train(model, _batches(2))
    assert mon.summary()["dead"][0] == pytest.approx(1 / 3)
    assert mon.summary()["in_mean"][0] < mon.summary()["out_mean"][0]  # inputs include the negatives


def test_prelu_and_actlab_modules_and_gated():
    model = nn.Sequential(nn.Linear(4, 8), nn.PReLU(8, init=0.0), nn.Linear(8, 8), actlab.get("swish(beta=1.5)"),
                          nn.Linear(8, 8), actlab.get("swiglu"), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every pre-activation negative: PReLU with slope 0 is dead everywhere
    with actlab.monitor(model, every=1) as mon:
        _train(model, _batches(2))
    frame = mon.summary().set_index("site")
    assert frame.loc["1", "dead"] == 1.0 and frame.loc["1", "units"] == 8
    assert frame.loc["3", "dead"] == 0.0 and frame.loc["3", "activation"] == "swish"
    assert frame.loc["5", "units"] == 4  # the gate half of 8 features
    assert 0.0 <= frame.loc["5", "saturated"] <= 1.0


def test_call_sites_and_function_attributes():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            return F.leaky_relu(self.fc(x), 0.0) + F.gelu(x)

    block = Block()
    with pytest.raises(ValueError, match="example="):
        actlab.monitor(block, every=1)
    with torch.no_grad():
        block.fc.bias.fill_(-100.0)
    mon = actlab.monitor(block, torch.randn(2, 6), every=1)
    assert [s.name for s in mon.sites] == ["<model>:gelu", "<model>:leaky_relu"]
    block(torch.randn(4, 6, requires_grad=True)).sum().backward()
    frame = mon.summary().set_index("site")
    assert frame.loc["<model>:leaky_relu", "dead"] == 1.0  # the call's own slope 0 is the derivative's
    assert frame.loc["<model>:gelu", "dead"] == 0.0
    assert frame.loc["<model>:gelu", "grad_norm"] == pytest.approx(24 ** 0.5)  # d(sum)/dy = 1 on 4 x 6 outputs
    mon.stop()

    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=F.gelu, batch_first=True, dropout=0.0)
    original = layer.activation
    with actlab.monitor(layer, every=1) as mon:
        assert layer.activation is not original
        layer(torch.randn(2, 3, 8)).sum().backward()
    assert layer.activation is original
    row = mon.summary().iloc[0]
    assert (row["site"], row["kind"], row["units"], row["observations"]) == ("activation", "attribute", 16, 1)


def test_every_and_windows():
    model = _relu_model()
    mon = actlab.monitor(model, every=3, window=6, warn_dead=None)
    _train(model, _batches(14))
    with torch.no_grad():
        model(torch.rand(5, 4))  # no grad: not a step
    model.eval()
    model(torch.rand(5, 4))  # eval: not a step
    assert mon.steps == 14 and mon.windows_closed == 2
    assert mon.window_steps() == (7, 6, 2)  # steps 7-12, sampled 7 and 10
    assert mon.summary()["observations"][0] == 2
    assert mon.window_steps("current") == (13, 2, 1)  # step 13 sampled
    mon.reset()
    assert mon.window_steps() == (15, 0, 0)
    assert mon.summary()["observations"][0] == 0


def test_outputs_unchanged_and_hooks_removed():
    model = _relu_model()
    x = torch.rand(5, 4)
    expected = model(x)
    with actlab.monitor(model, example=x, every=1) as mon:
        assert torch.equal(model(x), expected)
        assert mon.running
    assert not mon.running
    assert not model._forward_pre_hooks and not model._forward_hooks
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_no_backward_leaves_grad_norm_nan():
    model = _relu_model()
    with actlab.monitor(model, every=1) as mon:
        _train(model, _batches(2), backward=False)
    assert math.isnan(mon.summary()["grad_norm"][0])
    assert mon.summary()["observations"][0] == 2


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


_SYNCING = {"aten._local_scalar_dense", "aten.item", "aten.nonzero", "aten.is_nonzero", "aten.equal",
            "aten.masked_select", "aten.unique", "aten._unique2"}


def test_no_host_sync_during_steps_one_at_a_read():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), actlab.get("swish"), nn.Linear(8, 1))
    mon = actlab.monitor(model, window=50, every=1)
    with _Ops() as ops:
        _train(model, _batches(5))
    assert ops.names, "the dispatch mode saw nothing"
    assert not _SYNCING & set(ops.names), sorted(_SYNCING & set(ops.names))
    with _Ops() as ops:
        mon.reports("current")
    assert not _SYNCING & set(ops.names)  # one tensor brings every number across, not one .item() each
    mon.stop()


def test_warnings_once_per_site_until_it_recovers():
    model = _relu_model()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every unit dead
    mon = actlab.monitor(model, window=2, warn_dead=0.5, every=1)
    with pytest.warns(ActivationHealthWarning, match=r"site 1 \(relu\): 100% of its 3 units dead over steps 1-2"):
        _train(model, _batches(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _train(model, _batches(4))  # still dead: no second warning
    mon.stop()


def test_log_to_writes_each_closed_window():
    class Writer:
        def __init__(self):
            self.scalars = []

        def add_scalar(self, tag, value, global_step):
            self.scalars.append((tag, value, global_step))

    model, writer = _relu_model(), Writer()
    mon = actlab.monitor(model, window=2, every=1).log_to(writer)
    _train(model, _batches(5))
    mon.stop()
    tags = {t for t, _, _ in writer.scalars}
    assert {"actlab/1/dead", "actlab/1/saturated", "actlab/1/grad_norm"} <= tags
    assert sorted({s for _, _, s in writer.scalars}) == [2, 4]
    with pytest.raises(TypeError, match="add_scalar"):
        mon.log_to(object())


def test_tensorboard_summary_writer(tmp_path):
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    model = _relu_model()
    writer = tensorboard.SummaryWriter(str(tmp_path))
    mon = actlab.monitor(model, window=2, every=1).log_to(writer)
    _train(model, _batches(4))
    writer.close()
    mon.stop()
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())


def test_display_and_repr():
    model = _relu_model()
    with actlab.monitor(model, window=None, every=1) as mon:
        _train(model, _batches(2))
    page = mon._repr_html_()
    assert "<table" in page and "relu" in page and "33.3%" in page
    fig = mon.plot()
    assert len(fig.axes) == 3 and fig.axes[0].get_ylim() == (-3, 103)
    with pytest.raises(ValueError, match="statistics"):
        mon.plot(statistics=("nope",))
    assert "(1 site," in repr(mon)


@pytest.mark.parametrize("options, message", [
    ({"saturation": 0.0}, "saturation=0.0"), ({"saturation": float("nan")}, "saturation=nan"),
    ({"dead_below": -1.0}, "dead_below=-1.0"), ({"dead_below": 0.5}, r"dead_below=0.5"),
    ({"warn_dead": 1.5}, "warn_dead=1.5"), ({"warn_saturated": -0.1}, "warn_saturated=-0.1"),
    ({"every": 0}, "every=0"), ({"window": 0}, "window=0"), ({"sites": ["nope"]}, r"sites=\['nope'\]"),
    ({"unit_dim": {"nope": 1}}, "unit_dim names"),
])
def test_bad_input_names_the_argument(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ActivationMonitor(_relu_model(), **options)


def test_no_activation_site_is_an_error():
    with pytest.raises(ValueError, match="no activation site"):
        actlab.monitor(nn.Linear(3, 3))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        actlab.monitor("model", every=1)  # type: ignore[arg-type]


def test_conv_units_are_channels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 1))
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([-100.0, 0.0, 0.0, 0.0]))
    with actlab.monitor(model, every=1) as mon:
        model(torch.randn(3, 1, 8, 8)).sum().backward()
    row = mon.summary().iloc[0]
    assert row["units"] == 4 and row["dead"] == pytest.approx(0.25)
    with actlab.monitor(model, unit_dim=-1, every=1) as mon:
        model(torch.randn(3, 1, 8, 8)).sum().backward()
    assert mon.summary().iloc[0]["units"] == 6


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if n != "identity"])  # identity is no site
def test_site_derivative_is_the_closed_form(name):
    """The monitor reads f' through actlab's backward kernels (ones upstream): the spec's closed form, up to the
    rounding of a fused kernel; torch's own module with the same name and parameters reads the same."""
    module = actlab.get(name)
    site = discover(nn.Sequential(nn.Linear(2, 2), module))[0]
    x = torch.linspace(-6, 6, 1001).reshape(7, 143)
    expected = module.derivative(x)
    torch.testing.assert_close(site.derivative(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("torch_module, name", [
    (nn.LeakyReLU(0.2), "leaky_relu(negative_slope=0.2)"), (nn.ELU(alpha=0.5), "elu(alpha=0.5)"),
    (nn.GELU(approximate="tanh"), "gelu(approximate='tanh')"),
    (nn.Softplus(beta=2.0, threshold=5.0), "softplus(beta=2, threshold=5)")])
def test_torch_module_derivative_takes_its_parameters(torch_module, name):
    site = discover(nn.Sequential(nn.Linear(2, 2), torch_module))[0]
    x = torch.linspace(-6, 6, 1001)
    torch.testing.assert_close(site.derivative(x), actlab.get(name).derivative(x), rtol=1e-5, atol=1e-6)
