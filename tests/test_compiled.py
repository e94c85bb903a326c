"""actlab's compiled lean paths (``actlab build-ext``): within DESIGN.md's numerics policy of the float64 values in
float32 and the half types (their fused loops), the same bits as the Python lean paths where they make the same aten
calls (float64, strided tensors); the backwards they leave to Python (double backward, batched gradients, float64
hardsigmoid) right; autograd's bookkeeping (saved-tensor checks, retain_graph, which inputs need gradients) as
PyTorch's own nodes.

The README's test command builds the extension first, so these run in CI; elsewhere they skip until it is built."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

import actlab
from actlab.kernels import compiled, function
from actlab.kernels.implementations import IMPLEMENTATIONS

built = pytest.mark.skipif(compiled.load() is None, reason="the compiled lean paths are not built (actlab build-ext)")

COMPILED = [spec for spec, impl in IMPLEMENTATIONS.items() if impl.compiled is not None]
CASES = [("swish", {"beta": 1.5}), ("swish", {"beta": 0.5}), ("swish", {"beta": 20.0}), ("squared_relu", {}),
         ("hardsigmoid", {}), ("softsign", {}), ("swiglu", {}), ("swiglu", {"beta": 1.7}), ("geglu", {}),
         ("geglu", {"approximate": "tanh"})]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
FUSED = (torch.float32, torch.bfloat16, torch.float16)  # the fused loops' types (contiguous tensors)


def test_the_cases_cover_every_compiled_entry():
    assert {actlab.spec(name) for name, _ in CASES} == set(COMPILED)


def _same(a, b) -> bool:
    """Bit for bit, NaN included (an input at the type's maximum may give NaN on both paths)."""
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    return True


def _within(got, exact, scale, dtype, what) -> bool:
    """DESIGN.md's policy against float64 values: 8 float32 ulps of |value| plus 8 of the inputs' own scale, and for
    half types one rounding (computed in float32, rounded once). Infinities and NaN where the float64 value has them;
    a float64 value beyond the type's range may round to its infinity."""
    got, exact = got.double(), exact.double()
    eps32 = torch.finfo(torch.float32).eps
    budget = 8 * eps32 * (exact.abs() + scale) + 2 * torch.finfo(torch.float32).smallest_normal
    if dtype != torch.float32:  # one rounding: half an ulp, or half the spacing of float16's subnormals
        info = torch.finfo(dtype)
        budget = budget + info.eps * exact.abs() + info.smallest_normal * info.eps
    finite = torch.isfinite(exact) & (exact.abs() < torch.finfo(dtype).max)
    bad = finite & ~((got - exact).abs() <= budget)
    bad |= ~finite & ~((got == exact) | (got.isnan() & exact.isnan()) | (exact.abs() >= torch.finfo(dtype).max))
    assert not bad.any(), f"{what}: got {got[bad][:4].tolist()}, want {exact[bad][:4].tolist()}"
    return True


def _python_paths(spec):
    """The Python lean paths of the same entry, as they run without the build."""
    return function._build_eager(spec, dataclasses.replace(IMPLEMENTATIONS[spec], compiled=None))


def _input(spec, dtype, contiguous=True):
    x = torch.cat([torch.randn(400, generator=torch.Generator().manual_seed(3)) * 6,
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, 300.0, -300.0, 3e4, -3e4, 1e30, -1e30])])
    big = min(torch.finfo(dtype).max, torch.finfo(torch.float32).max)  # float16's 65504 stands in for 1e30
    x = x.reshape(-1, 4).clamp(-big, big).to(dtype)
    return x if contiguous else x.t().contiguous().t()  # same values, column-major


def _scales(spec, x, g):
    """The inputs' own scale of each output and gradient element: |x| (gated: |a| (1 + |b|)) forward; |g| (1 + |x|)
    backward (gated: |g| (1 + |b|) for a, |g| |a| (1 + |b|) for b)."""
    x, g = x.double().abs(), g.double().abs()
    if spec.kind != "gated":
        return x, g * (1 + x)
    a, b = x.chunk(2, dim=-1)
    return a * (1 + b), torch.cat([g * (1 + b), g * a * (1 + b)], dim=-1)


@built
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_the_compiled_node_is_within_the_policy_and_equals_the_python_paths_where_they_share_aten(
        name, params, dtype, contiguous):
    """Contiguous float32 and half types run the fused loops: within the numerics policy of the float64 values,
    forward and backward. float64 and strided tensors run the Python paths' aten calls: the same bits."""
    spec = actlab.spec(name)
    values = tuple(spec.resolve_params(params).values())
    ops = {"compiled": function.eager_paths(spec), "python": _python_paths(spec)}
    assert ops["compiled"].autograd is compiled.lean_op(IMPLEMENTATIONS[spec].compiled, function._compiled_fallback)
    out, grads = {}, {}
    g = torch.randn(_input(spec, dtype).shape[:-1] + (4 // (2 if spec.kind == "gated" else 1),),
                    generator=torch.Generator().manual_seed(4)).to(dtype)
    for label, paths in ops.items():
        x = _input(spec, dtype, contiguous).requires_grad_()
        y = paths.autograd(x, *values)
        y.backward(g)
        out[label], grads[label] = y, x.grad
    resolved = dict(spec.resolve_params(params))
    forward = {label: paths.forward(_input(spec, dtype, contiguous), resolved) for label, paths in ops.items()}
    assert forward["compiled"].grad_fn is None and _same(forward["compiled"], out["compiled"].detach())
    assert out["compiled"].grad_fn.name() == f"{IMPLEMENTATIONS[spec].compiled}_lean_backward"
    assert out["compiled"].dtype == grads["compiled"].dtype == dtype
    assert out["compiled"].shape == out["python"].shape
    if dtype in FUSED and contiguous:
        x64 = _input(spec, dtype).double().requires_grad_()
        y64 = ops["python"].autograd(x64, *values)
        y64.backward(g.double())
        scale_y, scale_g = _scales(spec, x64.detach(), g)
        assert _within(out["compiled"].detach(), y64.detach(), scale_y, dtype, "forward")
        assert _within(grads["compiled"], x64.grad, scale_g, dtype, "backward")
    else:
        assert _same(forward["compiled"], forward["python"])
        assert _same(out["compiled"], out["python"]) and _same(grads["compiled"], grads["python"])


@built
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("needs", ["both", "x", "beta"])
def test_a_trained_beta_takes_the_compiled_node_within_the_policy(dtype, needs):
    """The input's gradient as the fixed-beta node's; beta's, a sum over the tensor in float32 lanes and double
    chunks, within 1e-4 of its terms' absolute sum (float64: the Python path's bits)."""
    spec = actlab.spec("swish")
    results = []
    g = torch.randn(_input(spec, dtype).shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    for paths, cast in ((function.eager_paths(spec), dtype), (_python_paths(spec), torch.float64)):
        x = _input(spec, dtype).to(cast).requires_grad_(needs != "beta")
        beta = torch.tensor(1.3, dtype=torch.float64 if cast == torch.float64 else torch.float32,
                            requires_grad=needs != "x")
        y = paths.function(x, beta)
        y.backward(g.to(cast))
        results.append((x.detach(), y, x.grad, beta.grad))
        assert beta.grad is None or beta.grad.dtype == beta.dtype
    (x, y, gx, gb), (x64, y64, gx64, gb64) = results
    assert y.grad_fn.name() == "swish_lean_backward" and y.dtype == dtype
    assert (gx is None) == (needs == "beta") and (gb is None) == (needs == "x")
    assert _within(y.detach(), y64.detach(), x64.abs(), dtype, "forward")
    if gx is not None:
        assert gx.dtype == dtype and _within(gx, gx64, g.double().abs() * (1 + x64.abs()), dtype, "grad x")
    if gb is not None:
        u = (1.3 * x64).clamp(-1e4, 1e4)
        terms = (g.double() * x64 * x64 * torch.sigmoid(u) * torch.sigmoid(-u)).abs().sum()
        assert gb.shape == ()
        assert abs(gb.item() - gb64.item()) <= 1e-4 * terms.item(), (gb.item(), gb64.item())
        if dtype == torch.float64:
            assert gb.item() == gb64.item()


@built
@pytest.mark.parametrize("dtype", FUSED, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_fused_loops_at_every_tail_and_across_threads(name, params, dtype):
    """Sizes around the loops' blocks (16 elements built for AVX2, 32 for AVX-512) and past one thread's share
    (32768 elements), every gated width parity: within the policy; what the loops written here compute, the same
    bits on one thread as on two.

    Swish's forward at beta != 1 is aten's softplus_backward (x sigmoid(beta x) in one pass; a loop of ours
    measured up to 1.2x slower, benchmarks/RESULTS.md). aten rounds the scalar tail of its loop differently from
    the vector body, so which elements fall in a tail, and their last bit, moves with the thread split: that forward
    is held to the policy on both thread counts, not to equal bits."""
    spec = actlab.spec(name)
    aten_forward = name == "swish"
    values = tuple(spec.resolve_params(params).values())
    op = function.eager_paths(spec).autograd
    shapes = [(1, 2), (3, 30), (5, 32), (7, 34), (3, 62), (3, 64), (3, 66), (2, 98), (130, 600)] \
        if spec.kind == "gated" else [(1,), (15,), (16,), (17,), (31,), (32,), (33,), (4099,), (90001,)]
    for shape in shapes:
        x0 = (torch.randn(shape, generator=torch.Generator().manual_seed(9)) * 4).to(dtype)
        results = []
        for threads in (1, 2):
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                x = x0.clone().requires_grad_()
                y = op(x, *values)
                g = torch.ones_like(y)
                y.backward(g)
            finally:
                torch.set_num_threads(before)
            results.append((y.detach(), x.grad))
        assert (aten_forward or _same(results[0][0], results[1][0])) and _same(results[0][1], results[1][1])
        x64 = x0.double().requires_grad_()
        y64 = _python_paths(spec).autograd(x64, *values)
        y64.backward(torch.ones_like(y64))
        scale_y, scale_g = _scales(spec, x64.detach(), torch.ones_like(y64))
        for y, grad in results:
            assert _within(y, y64.detach(), scale_y, dtype, f"forward {shape}")
            assert _within(grad, x64.grad, scale_g, dtype, f"backward {shape}")


@built
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_the_compiled_ops_also_take_the_tensors_fused_cpu_would(name, params, monkeypatch):
    """Built, the compiled ops serve every size: their fused loops run on every thread and measured faster than
    fused_cpu's compiled loops at 2^22 (benchmarks/RESULTS.md). MIN_NUMEL lowered so a small tensor stands in."""
    from actlab.kernels import fused_cpu

    monkeypatch.setattr(fused_cpu, "MIN_NUMEL", 1)
    monkeypatch.setattr(fused_cpu, "_kernel", lambda *a, **k: pytest.fail("fused_cpu's loop taken"))
    x = torch.randn(8, 32, requires_grad=True)
    for call in (actlab.get(name, **params), lambda t: actlab.functional.apply(name, t, **params)):
        y = call(x)
        assert y.grad_fn.name().endswith("_lean_backward")
        y.backward(torch.ones_like(y))
    beta = torch.tensor(1.3, requires_grad=True)
    assert actlab.functional.swish(x, beta=beta).grad_fn.name() == "swish_lean_backward"
    assert actlab.get("swish", trainable=True)(x).grad_fn.name() == "swish_lean_backward"


@built
def test_inputs_near_the_float32_limit_give_the_derivatives_limits():
    x = torch.tensor([-3e38, -1e38, -100.0, 0.0, 100.0, 1e38, 3e38]).repeat(8).requires_grad_()
    actlab.functional.swish(x, beta=10.0).sum().backward()
    assert x.grad[:7].tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    for name in ("swiglu", "geglu", "geglu(approximate='tanh')"):
        z = torch.stack([torch.ones(7), x.detach()[:7]], dim=-1).reshape(7, 2).requires_grad_()
        actlab.get(name)(z).sum().backward()
        assert z.grad[:, 1].tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0], name


@built
def test_a_trained_beta_gradient_is_the_same_on_one_thread_and_two():
    x0 = torch.randn(90001, generator=torch.Generator().manual_seed(10)) * 3
    grads = []
    for threads in (1, 2):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            beta = torch.tensor(0.7, requires_grad=True)
            actlab.functional.swish(x0, beta=beta).sum().backward()
        finally:
            torch.set_num_threads(before)
        grads.append(beta.grad)
    assert _same(grads[0], grads[1])


@built
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_double_backward_and_gradchecks_through_the_fallback(name, params):
    """A backward recorded for double backward is the fallback's (the spec's differentiable expressions)."""
    module = actlab.get(name, **params)
    x = (torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) * 2).requires_grad_()
    assert module(x).grad_fn.name().endswith("_lean_backward")
    assert torch.autograd.gradcheck(module, (x,)) and torch.autograd.gradgradcheck(module, (x,))


@built
def test_a_trained_beta_passes_gradcheck_and_gradgradcheck():
    x = (torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) * 2).requires_grad_()
    beta = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    f = lambda x, b: actlab.functional.swish(x, beta=b)  # noqa: E731
    assert f(x, beta).grad_fn.name() == "swish_lean_backward"
    assert torch.autograd.gradcheck(f, (x, beta)) and torch.autograd.gradgradcheck(f, (x, beta))


@built
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{p}" for n, p in CASES])
def test_batched_gradients_go_through_the_fallback(name, params):
    module = actlab.get(name, **params)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(8)).requires_grad_()
    y = module(x)
    eye = torch.eye(y.numel()).reshape(-1, *y.shape)
    (batched,) = torch.autograd.grad(y, x, eye, retain_graph=True, is_grads_batched=True)
    rows = [torch.autograd.grad(y, x, e, retain_graph=True)[0] for e in eye]
    torch.testing.assert_close(batched, torch.stack(rows), rtol=1e-6, atol=1e-7)


@built
def test_float64_hardsigmoid_backward_is_the_expressions_not_aten_float32_sixth():
    x = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    actlab.functional.hardsigmoid(x).backward(torch.ones(3, dtype=torch.float64))
    assert torch.equal(x.grad, torch.full((3,), 1 / 6, dtype=torch.float64))


@built
def test_autograd_bookkeeping_matches_pytorch_nodes():
    module = actlab.get("swish(beta=1.5)")
    x = torch.randn(4, 8, requires_grad=True)
    h = x * 1.0
    y = module(h)
    h.add_(1.0)  # the saved input changed before backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y = module(x)
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, 2 * torch.ops.aten.silu_backward(torch.ones(4, 8), 1.5 * x.detach()))
    with pytest.raises(RuntimeError, match="second time|already been freed"):
        y.sum().backward()
    with torch.no_grad():
        assert module(x).grad_fn is None
    assert module(x.detach()).grad_fn is None


def test_a_build_is_keyed_by_the_source_torch_and_python(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTLAB_COMPILED_DIR", str(tmp_path))
    name = compiled.module_name()
    assert compiled.build_directory() == tmp_path / name
    monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    assert compiled.module_name() != name
    compiled.load.cache_clear()
    try:
        assert compiled.load() is None  # nothing built here for this key: the Python paths run
    finally:
        compiled.load.cache_clear()


def test_actlab_compiled_0_turns_the_build_off():
    code = ("import torch, actlab; from actlab.kernels import compiled; assert compiled.load() is None; "
            "print(type(actlab.get('swish(beta=1.5)')(torch.ones(2, requires_grad=True)).grad_fn).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "ACTLAB_COMPILED": "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "EagerActivationFunctionBackward"


def test_a_failed_build_is_one_error_line_and_exit_1(tmp_path):
    env = {**os.environ, "ACTLAB_COMPILED_DIR": str(tmp_path), "CXX": "/bin/false"}
    proc = subprocess.run([sys.executable, "-m", "actlab", "build-ext"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "error: build-ext: the build failed" in proc.stderr


@built
def test_threads_run_the_nodes_and_the_fallback_at_once():
    """Forward releases the GIL while aten runs and the fallback takes it back from autograd's threads: two Python
    threads training through both give what one thread gives."""
    from concurrent.futures import ThreadPoolExecutor

    module = actlab.get("swish(beta=1.5)")
    x = torch.randn(64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(10))

    def work(_):
        grads = []
        for _ in range(20):
            t = x.clone().requires_grad_()
            (g,) = torch.autograd.grad(module(t).sum(), t, create_graph=True)  # second order: the fallback
            (h,) = torch.autograd.grad(g.sum(), t)
            grads.append((g.detach(), h))
        return grads

    expected = work(0)
    with ThreadPoolExecutor(2) as pool:
        for result in pool.map(work, range(4)):
            assert all(torch.equal(g, ge) and torch.equal(h, he) for (g, h), (ge, he) in zip(result, expected))


def test_the_build_changes_the_keys_of_the_activations_whose_numbers_it_changes():
    """The fused loops round differently from the Python paths, so a trial trained with them is another trial; but
    relu, leaky_relu and swish at beta 1 run aten's ops either way, and their stored trials stay valid. (The key
    recorded "-compiled" or "-python" for the whole install, and a build retrained every stored trial.)"""
    import json
    import subprocess
    import sys

    code = ("import json; from actlab.experiments.workload.tasks import resolve_task; "
            "from actlab.experiments.comparison.compare import fingerprints, parse_contender, key_identity; "
            "t = resolve_task('mnist1d'); d = t.load(); "
            "f = fingerprints(t, d, [parse_contender(a) for a in ('relu', 'leaky_relu', 'swish', 'geglu')]); "
            "print(json.dumps({k: key_identity(v) for k, v in f.items()}))")
    keys = {}
    for setting in ("1", "0"):
        env = {**__import__("os").environ, "ACTLAB_COMPILED": setting}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        keys[setting] = json.loads(out.stdout)
    for name in ("relu", "leaky_relu", "swish"):
        assert keys["1"][name] == keys["0"][name], name
    if compiled.load() is not None:
        assert keys["1"]["geglu"] != keys["0"]["geglu"]  # its fused loops ran


def test_a_worker_whose_code_differs_from_the_planner_refuses_the_job(monkeypatch):
    """A Ray worker without the build the driver has (or with other code) would store its numbers under the
    driver's key: it refuses before training."""
    from actlab.experiments.training import group

    job = group.GroupJob(phase="test", activation="relu", trainable=False, task="mnist1d", data_dir=None, recipe={},
                         lrs=(0.01,), base_seed=0, seed_indices=(0,), keys=("k",),
                         identity={"trainer": group.trainer_version()})
    monkeypatch.setattr(group, "load_data", lambda *a: pytest.fail("trained"))
    other = None if compiled.load() is not None else object()  # the build's state flipped on the worker
    monkeypatch.setattr(compiled, "load", lambda: other)
    with pytest.raises(RuntimeError, match="differs from the code that planned the job"):
        group.run_group(job)
