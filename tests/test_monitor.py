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
    assert sorted({s for _, _, s in writer.scalars}) == [2, 4, 5]  # stop() closes the last, partial window
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


# ----- defects found in review: each reproduced before its fix ------------------------------------------------------

class _SwishFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad * (s * (1 + x * (1 - s)))


class MemoryEfficientSwish(nn.Module):  # timm's and EfficientNet's pattern: an autograd.Function without jvp
    def forward(self, x):
        return _SwishFunction.apply(x)


def test_sites_that_forward_ad_cannot_differentiate_still_work():
    """nn.GLU raised a shape error inside the user's forward; an autograd.Function activation raised functorch's
    setup_context error; torch.tanh(h, out=buf) raised forward AD's out= error."""
    class Calls(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            buf = torch.empty(x.shape[0], 8)
            return torch.tanh(self.fc(x), out=buf) if not torch.is_grad_enabled() else torch.tanh(self.fc(x))

    model = nn.Sequential(nn.Linear(4, 16), nn.GLU(), nn.Linear(8, 8), MemoryEfficientSwish(), Calls())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with actlab.monitor(model, torch.randn(2, 4), every=1) as mon:
            model(torch.randn(6, 4)).sum().backward()
    frame = mon.summary().set_index("site")
    assert frame.loc["1", "units"] == 8 and frame.loc["3", "activation"] == "swish"
    x = torch.linspace(-4, 4, 9)
    torch.testing.assert_close(mon.sites[1].derivative(x), actlab.get("swish").derivative(x))


def test_a_site_that_raises_is_turned_off_and_training_goes_on():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    mon = actlab.monitor(model, every=1)

    def boom(x):
        raise RuntimeError("boom")

    mon.sites[0].derivative = boom
    with pytest.warns(RuntimeWarning, match="site 1 .* turned off.*boom"):
        model(torch.randn(3, 4)).sum().backward()
    model(torch.randn(3, 4)).sum().backward()
    mon.stop()
    frame = mon.summary().set_index("site")
    assert frame.loc["1", "observations"] == 0 and frame.loc["3", "observations"] == 2


def test_compiled_models_are_refused():
    model = _relu_model()
    with pytest.raises(ValueError, match="compiled"):
        actlab.monitor(torch.compile(model))


def test_manual_steps_leave_nothing_behind_after_an_exception():
    """A trainer that raised mid-step left the monitor armed: its mode stayed pushed and eval forwards were
    recorded."""
    from torch.overrides import _get_current_function_mode_stack

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            h = F.gelu(self.fc(x))
            if getattr(self, "fail", False):
                raise RuntimeError("out of memory (simulated)")
            return h

    block = Block()
    mon = actlab.monitor(block, torch.randn(2, 4), every=1, steps="manual")
    mon.step_begin()
    block.fail = True
    with pytest.raises(RuntimeError, match="simulated"):
        block(torch.randn(3, 4))
    assert not _get_current_function_mode_stack()
    block.fail = False
    block.eval()
    block(torch.randn(3, 4))
    mon.stop()
    assert mon.summary()["observations"][0] == 1  # the failed step's forward only


def test_finding_calls_keeps_each_modules_own_mode():
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)), nn.ReLU(), nn.Linear(4, 2))
    model[0].eval()  # a frozen backbone
    actlab.monitor(model, torch.randn(3, 4)).stop()
    assert model.training and not model[0].training and not model[0][1].training


def test_rrelu_does_not_move_the_training_runs_random_stream():
    def run(watched: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.RReLU(), nn.Dropout(0.5), nn.Linear(8, 1))
        mon = actlab.monitor(model, every=1) if watched else None
        out = model(torch.randn(16, 4))
        if mon is not None:
            mon.stop()
        return out

    torch.testing.assert_close(run(True), run(False), rtol=0, atol=0)


def test_function_attributes_pickle_copy_and_stay_recognized(tmp_path):
    import copy
    import pickle

    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=F.gelu, batch_first=True, dropout=0.0)
    with actlab.monitor(layer, every=1):
        assert pickle.loads(pickle.dumps(layer)).activation is F.gelu
        assert copy.deepcopy(layer).activation is F.gelu
        assert [s.path for s in actlab.find_activations(layer)] == ["activation"]
        torch.save(layer, tmp_path / "layer.pt")


def test_a_module_used_at_two_places_is_one_site_named_by_both():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu, nn.Linear(4, 1))
    with actlab.monitor(model, every=1) as mon:
        model(torch.randn(3, 4)).sum().backward()
    frame = mon.summary()
    assert list(frame["site"]) == ["1, 3"] and frame["observations"][0] == 2


def test_unit_axis_when_the_activation_is_registered_before_its_convolutions():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.stem = nn.Sequential(nn.Conv2d(3, 32, 3))
            self.head = nn.Linear(32, 1)

        def forward(self, x):
            return self.head(self.act(self.stem(x)).mean((2, 3)))

    net = Net()
    with actlab.monitor(net, every=1) as mon:
        net(torch.randn(2, 3, 19, 19)).sum().backward()
    assert mon.summary()["units"][0] == 32  # channels, not the 17-pixel width


def test_moments_keep_the_spread_of_saturated_outputs():
    """E[x^2] - E[x]^2 in float32 gave a saturated sigmoid's output std as 0.00029 where it is 0.00038."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 1), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.fill_(1e-3)
        model[0].bias.fill_(4.6)
    x = torch.randn(4096, 1)
    with actlab.monitor(model, every=1, roles="output", warn_saturated=None) as mon:
        model(x).sum().backward()
    y = model(x).detach().double()
    assert mon.summary()["out_std"][0] == pytest.approx(float(y.std(correction=0)), rel=1e-3)


def test_a_non_finite_batch_shows_as_nan():
    model = _relu_model()
    with actlab.monitor(model, every=1) as mon:
        _train(model, _batches(2))
        model(torch.full((5, 4), float("nan"))).sum().backward()
    frame = mon.summary()
    assert math.isnan(frame["in_mean"][0]) and math.isnan(frame["out_mean"][0])


def test_checkpointed_recomputation_is_not_observed_twice():
    from torch.utils.checkpoint import checkpoint

    inner = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return checkpoint(self.inner, x, use_reentrant=False).sum()

    net = Net()
    with actlab.monitor(net, every=1) as mon:
        for _ in range(3):
            net(torch.randn(3, 4, requires_grad=True)).backward()
    assert mon.summary()["observations"][0] == 3
