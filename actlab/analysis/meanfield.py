"""Signal propagation at initialisation in the mean-field limit (Poole et al. 2016; Schoenholz et al. 2017;
Hayou et al. 2019), computed from an activation's float64 reference by Gaussian expectations integrated piecewise:
the real line is split at the activation's breakpoints (its kinks and jumps, a spec field), and each smooth piece
gets its own Gauss-Legendre rule on [-Z_MAX, Z_MAX] standard deviations. One Gauss-Hermite rule across a kink
converges slowly (ELU's edge of chaos at sigma_b = 0.2 came out 1.2339 instead of 1.22925); split, every expectation
here is accurate to about 1e-12.

For a wide MLP with weights N(0, sigma_w^2 / width) and biases N(0, sigma_b^2), pre-activations are Gaussian with
variance q, and

- variance map      q' = sigma_w^2 E[f(sqrt(q) z)^2] + sigma_b^2
- correlation map   c' = (sigma_w^2 E[f(u1) f(u2)] + sigma_b^2) / q*,  u1 = sqrt(q*) z1,
                    u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2)
- chi               chi = sigma_w^2 E[f'(sqrt(q*) z)^2]   (gradients explode for chi > 1, vanish for chi < 1)

The edge of chaos is the sigma_w where chi = 1 at the variance fixed point q*.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from actlab import catalog
from actlab.catalog import ActivationSpec
from actlab.errors import ActlabError, lab_hint

NODES = 96  # Gauss-Legendre nodes per smooth piece
Z_MAX = 12.0  # the standard normal puts less than 1e-32 of its mass beyond 12 standard deviations


ActivationLike = str | ActivationSpec  # a name, a string form ("elu(alpha=0.5)") or a spec


@lru_cache(maxsize=4)

def _brentq(*args: Any, **kwargs: Any) -> float:
    """scipy's Brent root finder, imported when a fixed point or an edge of chaos is asked for: the rest of the
    mean field needs only NumPy."""
    try:
        from scipy import optimize
    except ImportError as exc:
        raise lab_hint(exc, "the mean field's fixed points and edge of chaos") from exc
    return float(optimize.brentq(*args, **kwargs))

def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _pieces(kinks_z: np.ndarray, n: int = NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of E[h(z)], z ~ N(0, 1), split at ``kinks_z`` (last axis; leading axes batch rows with
    their own kinks). Kinks outside [-Z_MAX, Z_MAX] are clipped there, where they carry no mass."""
    t, w = _legendre(n)
    k = np.clip(np.sort(np.asarray(kinks_z, dtype=np.float64), axis=-1), -Z_MAX, Z_MAX)
    lead = k.shape[:-1]
    edges = np.concatenate([np.full(lead + (1,), -Z_MAX), k, np.full(lead + (1,), Z_MAX)], axis=-1)
    a, b = edges[..., :-1, None], edges[..., 1:, None]  # pieces
    z = (a + b) / 2 + (b - a) / 2 * t
    weights = (b - a) / 2 * w * np.exp(-z * z / 2) / math.sqrt(2.0 * math.pi)
    return z.reshape(lead + (-1,)), weights.reshape(lead + (-1,))


def _fn(act: Any, params: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    resolved = catalog.resolve(act, params)
    spec = resolved.spec
    if spec.kind != "elementwise":
        raise ActlabError(f"{spec.name}: mean-field propagation needs an elementwise activation, not a {spec.kind} one")
    p = resolved.params
    f: Any = lambda x: spec.reference(x, **p)  # noqa: E731
    df: Any = lambda x: spec.derivative(x, **p)  # noqa: E731
    f.kinks = df.kinks = tuple(float(b) for b in spec.breakpoints(**p))
    return f, df, resolved.text


def gaussian_mean(g: Callable[[np.ndarray], np.ndarray], q: float, kinks: tuple[float, ...] = ()) -> float:
    """E[g(sqrt(q) z)] for z ~ N(0, 1), integrated piecewise between the ``kinks`` of g (in x = sqrt(q) z;
    default: ``g.kinks`` when g carries them)."""
    s = math.sqrt(max(q, 0.0))
    kinks = kinks or getattr(g, "kinks", ())
    if s == 0.0:
        return float(g(np.zeros(1))[0])
    z, w = _pieces(np.asarray([k / s for k in kinks]))
    return float(np.dot(w, g(s * z)))


def variance_map(act: ActivationLike, q: float, sigma_w: float, sigma_b: float) -> float:
    f, _, _ = _fn(act)
    return sigma_w**2 * gaussian_mean(lambda x: f(x) ** 2, q, f.kinks) + sigma_b**2


def chi(act: ActivationLike, q: float, sigma_w: float) -> float:
    _, df, _ = _fn(act)
    return sigma_w**2 * gaussian_mean(lambda x: df(x) ** 2, q, df.kinks)


@dataclass(frozen=True)
class FixedPoint:
    q: float | None  # None: the variance grows without bound (no finite fixed point)
    slope: float | None  # dq'/dq at q*: the fixed point attracts when |slope| < 1
    chi: float | None
    converged: bool
    note: str = ""

    @property
    def stable(self) -> bool:
        return self.q is not None and self.slope is not None and abs(self.slope) < 1.0


_Q_TINY = 1e-14  # q* = 0 is evaluated as this limit: chi at q = 0 itself would read f' at a kink


def _check_sigmas(sigma_w: float, sigma_b: float) -> None:
    for name, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
            raise ActlabError(f"{name} = {v!r} is not allowed; it is a standard deviation: a finite number >= 0")


def fixed_point(act: ActivationLike, sigma_w: float, sigma_b: float, q0: float = 1.0, max_iter: int = 300,
                tol: float = 1e-12) -> FixedPoint:
    """The variance fixed point q* reached by iterating the variance map from q0, and its stability. Near a
    bifurcation the iteration converges slowly (algebraically, as tanh's at sigma_w = 1, sigma_b = 0); then q* is
    solved for directly between the last iterate and where the iterates head (0 or beyond), instead of taking an
    unconverged iterate for q*. q* = 0 (f(0) = 0 and sigma_b = 0, the variance dying out) reports its slope and
    chi as their limits at q -> 0+."""
    _check_sigmas(sigma_w, sigma_b)
    f, df, text = _fn(act)
    vmap = lambda q: sigma_w**2 * gaussian_mean(lambda x: f(x) ** 2, q, f.kinks) + sigma_b**2  # noqa: E731
    unbounded = FixedPoint(None, None, None, False, f"{text}: the variance grows without bound for "
                           f"sigma_w={sigma_w:g}, sigma_b={sigma_b:g} (no finite fixed point)")
    q = q0
    for _ in range(max_iter):
        nq = vmap(q)
        if not math.isfinite(nq) or nq > 1e12:
            return unbounded
        if abs(nq - q) <= tol * max(1.0, q):
            q = nq
            break
        q = nq
    else:
        solved = _solve_fixed_point(vmap, q)
        if solved is None:
            return unbounded
        q = solved
    at = max(q, _Q_TINY)
    h = 1e-6 * at
    slope = (vmap(at + h) - vmap(max(at - h, 0.0))) / (at + h - max(at - h, 0.0))
    return FixedPoint(q, slope, sigma_w**2 * gaussian_mean(lambda x: df(x) ** 2, at, df.kinks), True)


def _solve_fixed_point(vmap: Callable[[float], float], q: float) -> float | None:
    """The root of vmap(q) - q toward which iterates starting at ``q`` move: below q (0 when the map stays under
    the diagonal all the way down) or above it (None when no finite one is found)."""
    gap = lambda v: vmap(v) - v  # noqa: E731
    if gap(q) < 0:  # moving down
        if gap(_Q_TINY) <= 0:
            return 0.0 if vmap(0.0) == 0.0 else _brentq(gap, 0.0, _Q_TINY, xtol=1e-300)
        return _brentq(gap, _Q_TINY, q, xtol=1e-15, rtol=1e-13)
    hi = 2.0 * max(q, 1e-12)
    while gap(hi) > 0:
        if hi > 1e12:
            return None
        hi *= 2.0
    return _brentq(gap, q, hi, xtol=1e-15, rtol=1e-13)


def correlation_map(act: ActivationLike, c: float, q_star: float, sigma_w: float, sigma_b: float, n: int = 64) -> float:
    """One layer of the correlation map, as an iterated integral split at every kink: the outer one at f's kinks
    in u1, the inner one (per outer node) where u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2) crosses them."""
    f, _, _ = _fn(act)
    s = math.sqrt(q_star)
    kinks = np.asarray(f.kinks, dtype=np.float64)
    z1, w1 = _pieces(kinks / s, n)
    r = math.sqrt(max(1.0 - c * c, 0.0))
    if r == 0.0 or kinks.size == 0:
        z2, w2 = _pieces(np.zeros(0), n)
        z2, w2 = np.broadcast_to(z2, (z1.size, z2.size)), np.broadcast_to(w2, (z1.size, w2.size))
    else:
        z2, w2 = _pieces((kinks[None, :] / s - c * z1[:, None]) / r, n)
    inner = np.sum(w2 * f(s * (c * z1[:, None] + r * z2)), axis=1)
    return float((sigma_w**2 * np.dot(w1, f(s * z1) * inner) + sigma_b**2) / q_star)


@dataclass(frozen=True)
class EdgeOfChaos:
    activation: str
    sigma_b: float
    sigma_w: float | None
    q_star: float | None
    message: str = ""


def edge_of_chaos(act: ActivationLike, sigma_b: float = 0.0, bracket: tuple[float, float] = (0.3, 4.0)) -> EdgeOfChaos:
    """sigma_w with chi = 1 at the variance fixed point for this sigma_b, or a message saying why there is none."""
    _check_sigmas(1.0, sigma_b)
    _, _, text = _fn(act)

    def excess(sw: float) -> float:
        fp = fixed_point(act, sw, sigma_b)
        q = fp.q if fp.q is not None else 1.0  # unbounded variance: chi of a homogeneous f does not depend on q
        return chi(act, q, sw) - 1.0

    lo, hi = bracket
    try:
        a, b = excess(lo), excess(hi)
    except Exception as exc:  # pragma: no cover - defensive
        return EdgeOfChaos(text, sigma_b, None, None, f"{text}: cannot evaluate chi ({exc})")
    if not (math.isfinite(a) and math.isfinite(b)) or a * b > 0:
        return EdgeOfChaos(text, sigma_b, None, None,
                           f"{text}: chi - 1 does not change sign for sigma_w in [{lo}, {hi}] at sigma_b = {sigma_b:g} "
                           "(no edge of chaos there)")
    # maxiter: where chi - 1 leaves zero quadratically on one side (tanh at sigma_b = 0) Brent's steps crawl
    sw = _brentq(excess, lo, hi, xtol=1e-12, maxiter=1000)
    fp = fixed_point(act, sw, sigma_b)
    return EdgeOfChaos(text, sigma_b, sw, fp.q)


# ----- SELU's moment map (Klambauer et al. 2017) ----------------------------------------------------------------


def selu_moment_map(mu: float, nu: float, omega: float = 0.0, tau: float = 1.0, act: Any = "selu"
                    ) -> tuple[float, float]:
    """(mean, variance) of f(z) for z ~ N(mu * omega, nu * tau): the map g of the SELU paper (omega = sum of
    weights, tau = sum of squared weights; LeCun-normal init gives omega = 0, tau = 1)."""
    f, _, _ = _fn(act)
    mean, s = mu * omega, math.sqrt(max(nu * tau, 0.0))
    if s == 0.0:
        y = float(f(np.full(1, mean))[0])
        return y, 0.0
    z, w = _pieces(np.asarray([(k - mean) / s for k in f.kinks]))
    y = f(mean + s * z)
    m1 = float(np.dot(w, y))
    m2 = float(np.dot(w, y * y))
    return m1, m2 - m1 * m1


def selu_jacobian(mu: float = 0.0, nu: float = 1.0, h: float = 1e-5, **kw: Any) -> np.ndarray:
    """Jacobian of the moment map at (mu, nu) by central differences."""
    J = np.zeros((2, 2))
    for j, (dm, dn) in enumerate(((h, 0.0), (0.0, h))):
        plus = selu_moment_map(mu + dm, nu + dn, **kw)
        minus = selu_moment_map(mu - dm, nu - dn, **kw)
        J[:, j] = (np.asarray(plus) - np.asarray(minus)) / (2 * h)
    return J


def iterate_moments(mu: float, nu: float, steps: int = 50, **kw: Any) -> list[tuple[float, float]]:
    out = [(mu, nu)]
    for _ in range(steps):
        mu, nu = selu_moment_map(mu, nu, **kw)
        out.append((mu, nu))
    return out


def relu_correlation_step(delta: float) -> float:
    """One layer of ReLU's correlation map on its edge of chaos (sigma_w^2 = 2, sigma_b = 0) in closed form (the
    arc-cosine kernel, Cho & Saul 2009), written in delta = 1 - c so that it stays accurate as c -> 1."""
    s = math.sqrt(delta * (2.0 - delta))
    a = 2.0 * math.asin(math.sqrt(delta / 2.0))  # arccos(1 - delta) without cancellation
    return delta - (s - a * (1.0 - delta)) / math.pi
