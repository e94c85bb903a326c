"""Shared helpers: the catalogue split by kind, and input points that probe every region of a function."""

from __future__ import annotations

import os

# The Triton kernels are checked by Triton's interpreter on CPU tensors (tests/test_triton_kernels.py). triton reads
# this when it is first imported (torch.compile's tests may import it before that file runs), so it is set here.
os.environ.setdefault("TRITON_INTERPRET", "1")

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import actlab  # noqa: E402

_TORCHVISION_SCHEMAS = None


def import_torchvision():
    """torchvision, or None when it is not installed.

    On a machine with PyTorch's CPU build, PyPI's torchvision (a CUDA build) cannot load its compiled operators, and
    its import stops at registering a fake kernel for ``torchvision::nms``. The models the tests use are pure Python
    and call none of those operators, so the two schemas the import needs are declared (no kernel: calling them would
    fail loudly) and the import is retried. transformers imports torchvision where it is installed, so the Hugging
    Face tests call this too."""
    global _TORCHVISION_SCHEMAS
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    if _TORCHVISION_SCHEMAS is None:
        _TORCHVISION_SCHEMAS = torch.library.Library("torchvision", "FRAGMENT")
        _TORCHVISION_SCHEMAS.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return importlib.import_module("torchvision")


# Two activations that exist only in the tests, each given as its spec alone (one as a SymPy expression, one as a
# torch expression with nothing else): every parametrized test below runs on them as on the built-ins, which is what
# "adding an activation is adding a spec" promises.
SPEC_ONLY = (
    actlab.ActivationSpec(
        name="test_tanh_softplus", formula=r"\tanh(x)\,\mathrm{softplus}(x)", summary="A test-only activation.",
        references=(actlab.Reference("actlab tests", "a spec written as an expression only", 2026),),
        expression="tanh(x) * softplus(x)"),
    actlab.ActivationSpec(
        name="test_torch_only", formula=r"x\,\sigma(2x) - \tfrac{1}{10}\tanh(x)", summary="A test-only activation.",
        references=(actlab.Reference("actlab tests", "a spec written as a torch expression only", 2026),),
        torch_forward=lambda x: x * torch.sigmoid(2 * x) - 0.1 * torch.tanh(x)),
)
for _spec in SPEC_ONLY:
    if _spec.name not in actlab.names():
        actlab.register(_spec)

ELEMENTWISE = [n for n in actlab.names() if actlab.spec(n).kind == "elementwise"]
GATED = [n for n in actlab.names() if actlab.spec(n).kind == "gated"]
HALF_DTYPES = [torch.bfloat16, torch.float16]
FLOAT_DTYPES = [torch.float32, *HALF_DTYPES]

EXTREME = [-1e4, -1e3, -100.0, -40.0, -30.0, -20.0, -15.0, -10.0, -5.0, -3.0, -1.0, -1e-3, -1e-8, 0.0,
           1e-8, 1e-3, 1.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 100.0, 1e3, 1e4]


def sample_points(seed: int = 0, n: int = 400) -> np.ndarray:
    """Random points at several scales plus the extreme values above, float64."""
    rng = np.random.default_rng(seed)
    scales = np.repeat([0.1, 1.0, 4.0, 20.0], n // 4)
    return np.concatenate([rng.standard_normal(n) * scales, EXTREME])


def away_from_breakpoints(spec, x: np.ndarray, params=None, margin: float = 1e-3) -> np.ndarray:
    params = spec.resolve_params(params or {})
    bps = np.asarray(list(spec.breakpoints(**params)) or [np.inf], dtype=np.float64)
    keep = np.min(np.abs(x[:, None] - bps[None, :]), axis=1) > margin
    return x[keep]


@pytest.fixture(params=ELEMENTWISE)
def elementwise(request):
    return actlab.spec(request.param)


@pytest.fixture(params=GATED)
def gated(request):
    return actlab.spec(request.param)


def ulps(actual: torch.Tensor, expected: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Error of ``actual`` in units in the last place of ``dtype`` at the (float64) expected value.

    Below the normal range the unit is the smallest normal number: subnormal results carry few bits, and an
    absolute error under that size is within rounding there.
    """
    expected_t = torch.from_numpy(np.asarray(expected, dtype=np.float64))
    rounded = expected_t.to(dtype)
    finfo = torch.finfo(dtype)
    mag = rounded.abs().double().clamp_min(finfo.smallest_normal)
    ulp = torch.where(
        rounded.abs().double() < finfo.smallest_normal,
        torch.full_like(mag, finfo.smallest_normal),
        (2.0 ** torch.floor(torch.log2(mag))) * finfo.eps,
    )
    err = (actual.double() - expected_t).abs() / ulp
    same = (actual.double() == rounded.double()) | (torch.isinf(rounded) & (actual.double() == rounded.double()))
    return torch.where(same, torch.zeros_like(err), err).numpy()


def condition(spec, x: np.ndarray, params=None) -> np.ndarray:
    """|x f'(x) / f(x)|: how many ulps of output one ulp of relative change in x causes. An implementation that is
    backward stable (exact for an input within a ulp of x) may be off by that many ulps, plus rounding."""
    params = params or {}
    with np.errstate(all="ignore"):
        c = np.abs(x * spec.derivative(x, **params) / spec.reference(x, **params))
    return np.nan_to_num(c, nan=0.0, posinf=0.0)


def wait_for_trials(proc, store, n: int, timeout: float = 240.0, poll: float = 0.05) -> int:
    """Wait while ``proc`` runs until the SQLite ``store`` holds at least ``n`` trials; returns how many it holds
    (fewer if the process ended or the time ran out first)."""
    import sqlite3
    import time

    deadline = time.time() + timeout
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(store, timeout=1) as c:
                    stored = c.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
            except sqlite3.Error:
                stored = 0
            if stored >= n:
                break
        time.sleep(poll)
    return stored
