"""Triton kernels for every elementwise and gated activation: forward, backward, and a trainable scalar
parameter's gradient reduced in the same pass.

- Loads are converted to float32, the activation is computed in float32 (``triton_math``) and the result is
  rounded once to the input's type: float32, bfloat16 and float16. float64 is not handled here (the caller runs
  the PyTorch path, which computes in float64).
- Offsets are 64-bit when a tensor has 2**31 elements or more, 32-bit below.
- Gated kinds read the value half ``a`` and the gate half ``b`` straight out of the one ``[..., 2H]`` buffer
  (row r, column j: ``a`` at ``2H r + j``, ``b`` at ``2H r + H + j``), and backward writes both halves of the
  gradient into one ``[..., 2H]`` buffer: no chunk, cat or contiguous copies.
- Inputs must be contiguous: a non-contiguous input is not run here; :mod:`actlab.kernels.ops` sends it to
  the PyTorch path instead (the check is :func:`supports`).

The kernels run on CUDA tensors, and on CPU tensors under ``TRITON_INTERPRET=1`` (how the tests check them).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from actlab.kernels.triton_math import FUNCTIONS

BLOCK = 1024
NUM_WARPS = 4
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def supports(x: torch.Tensor) -> bool:
    """Whether these kernels take ``x`` (contiguous, a float32 or half type)."""
    return x.dtype in KERNEL_DTYPES and x.is_contiguous()


def _big(n: int) -> bool:
    return n >= 2**31 - BLOCK


@triton.jit
def _offsets(n, BLOCK: tl.constexpr, BIG: tl.constexpr):
    pid = tl.program_id(0)
    if BIG:
        pid = pid.to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < n


@triton.jit
def _forward_kernel(X, Y, W, n, p0, p1, FWD: tl.constexpr, HAS_W: tl.constexpr, BLOCK: tl.constexpr,
                    BIG: tl.constexpr):
    offs, mask = _offsets(n, BLOCK, BIG)
    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_W:
        p0 = tl.load(W).to(tl.float32)
    y = FWD(x, p0, p1)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _backward_kernel(X, G, DX, W, DW_PARTIAL, n, p0, p1, DER: tl.constexpr, PDER: tl.constexpr,
                     HAS_W: tl.constexpr, NEED_DW: tl.constexpr, BLOCK: tl.constexpr, BIG: tl.constexpr):
    offs, mask = _offsets(n, BLOCK, BIG)
    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_W:
        p0 = tl.load(W).to(tl.float32)
    tl.store(DX + offs, (g * DER(x, p0, p1)).to(DX.dtype.element_ty), mask=mask)
    if NEED_DW:
        contribution = tl.where(mask, g * PDER(x, p0, p1), 0.0)
        tl.store(DW_PARTIAL + tl.program_id(0), tl.sum(contribution, axis=0))


@triton.jit
def _gated_offsets(n, h, BLOCK: tl.constexpr, BIG: tl.constexpr):
    """Output offsets (row r, column j) and where the value and gate halves of that element live."""
    offs, mask = _offsets(n, BLOCK, BIG)
    row = offs // h
    a_offs = offs + row * h  # 2H r + j
    return offs, mask, a_offs, a_offs + h


@triton.jit
def _gated_forward_kernel(X, Y, n, h, p0, p1, GATE: tl.constexpr, BLOCK: tl.constexpr, BIG: tl.constexpr):
    offs, mask, a_offs, b_offs = _gated_offsets(n, h, BLOCK, BIG)
    a = tl.load(X + a_offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(X + b_offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + offs, (a * GATE(b, p0, p1)).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _gated_backward_kernel(X, G, DX, n, h, p0, p1, GATE: tl.constexpr, GATE_DER: tl.constexpr,
                           BLOCK: tl.constexpr, BIG: tl.constexpr):
    offs, mask, a_offs, b_offs = _gated_offsets(n, h, BLOCK, BIG)
    a = tl.load(X + a_offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(X + b_offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(DX + a_offs, (g * GATE(b, p0, p1)).to(DX.dtype.element_ty), mask=mask)
    tl.store(DX + b_offs, (g * a * GATE_DER(b, p0, p1)).to(DX.dtype.element_ty), mask=mask)


def _grid(n: int) -> tuple[int]:
    return (max(1, triton.cdiv(n, BLOCK)),)


def elementwise_forward(x: torch.Tensor, key: str, scalars: tuple[float, float],
                        weight: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    fwd, _, _ = FUNCTIONS[key]
    y = torch.empty_like(x) if out is None else out
    n = x.numel()
    if n:
        _forward_kernel[_grid(n)](x, y, weight if weight is not None else x, n, *scalars, FWD=fwd,
                                  HAS_W=weight is not None, BLOCK=BLOCK, BIG=_big(n), num_warps=NUM_WARPS)
    return y


def elementwise_backward(grad: torch.Tensor, x: torch.Tensor, key: str, scalars: tuple[float, float],
                         weight: torch.Tensor | None = None,
                         need_weight_grad: bool = False,
                         out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(grad_x, grad_weight)``; grad_weight is a float32 scalar (None unless asked for). ``out`` (here and
    below): a preallocated result, which the tests fill with poison first."""
    _, der, pder = FUNCTIONS[key]
    need_dw = need_weight_grad and weight is not None
    if need_dw and pder is None:
        raise ValueError(f"activation kernel {key!r} has no trainable parameter")
    grad = grad.contiguous()
    dx = torch.empty_like(x) if out is None else out
    n = x.numel()
    grid = _grid(n)
    partial = torch.zeros(grid[0] if need_dw else 1, dtype=torch.float32, device=x.device)
    if n:
        _backward_kernel[grid](x, grad, dx, weight if weight is not None else x, partial, n, *scalars, DER=der,
                               PDER=pder if pder is not None else der, HAS_W=weight is not None, NEED_DW=need_dw,
                               BLOCK=BLOCK, BIG=_big(n), num_warps=NUM_WARPS)
    return dx, (partial.sum() if need_dw else None)


def gated_forward(x: torch.Tensor, key: str, scalars: tuple[float, float],
                  out: torch.Tensor | None = None) -> torch.Tensor:
    fwd, _, _ = FUNCTIONS[key]
    h = x.shape[-1] // 2
    y = torch.empty((*x.shape[:-1], h), dtype=x.dtype, device=x.device) if out is None else out
    n = y.numel()
    if n:
        _gated_forward_kernel[_grid(n)](x, y, n, h, *scalars, GATE=fwd, BLOCK=BLOCK, BIG=_big(x.numel()),
                                        num_warps=NUM_WARPS)
    return y


def gated_backward(grad: torch.Tensor, x: torch.Tensor, key: str, scalars: tuple[float, float],
                   out: torch.Tensor | None = None) -> torch.Tensor:
    fwd, der, _ = FUNCTIONS[key]
    grad = grad.contiguous()
    dx = torch.empty_like(x) if out is None else out
    h = x.shape[-1] // 2
    n = grad.numel()
    if n:
        _gated_backward_kernel[_grid(n)](x, grad, dx, n, h, *scalars, GATE=fwd, GATE_DER=der, BLOCK=BLOCK,
                                         BIG=_big(x.numel()), num_warps=NUM_WARPS)
    return dx
