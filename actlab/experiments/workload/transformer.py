"""A small decoder-only transformer language model whose MLP activation is the one under comparison.

Pre-norm blocks (LayerNorm or RMSNorm), causal self-attention through ``F.scaled_dot_product_attention``, learned
or rotary positions, and an MLP ``Linear(d, h) -> activation -> Linear(h, d)``. Gated activations (glu, reglu,
geglu, swiglu) halve their input, so their first layer is ``Linear(d, 2h)``; to keep parameter counts equal they
get ``h`` = 2/3 of the ungated hidden width, rounded to a multiple of 8 (Shazeer 2020, "GLU Variants Improve
Transformer"; LLaMA). Logits come out as ``[batch, vocab, time]``, the layout ``F.cross_entropy`` takes with
targets ``[batch, time]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from actlab.errors import ActlabError
from actlab.experiments.workload.models import ActFactory


def hidden_width(d_model: int, mlp_ratio: float, gated: bool) -> int:
    """The MLP's hidden width: ``mlp_ratio * d_model``, or 2/3 of it rounded to a multiple of 8 when gated."""
    ungated = int(round(mlp_ratio * d_model))
    if not gated:
        return ungated
    return max(8, int(round(2 * ungated / 3 / 8)) * 8)


def check_shape(d_model: int, heads: int, positions: str) -> None:
    if d_model % heads:
        raise ActlabError(f"lm: heads = {heads} does not divide d_model = {d_model}; choose heads among the "
                          f"divisors of {d_model}")
    if positions == "rotary" and (d_model // heads) % 2:
        raise ActlabError(f"lm: rotary positions need an even head width; d_model / heads = {d_model // heads}")


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    a, b = x[..., ::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, context: int, rotary: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.rotary = rotary
        if rotary:
            half = d_model // heads // 2
            freq = 1.0 / (10000 ** (torch.arange(half, dtype=torch.float32) / half))
            angles = torch.arange(context, dtype=torch.float32)[:, None] * freq[None, :]
            self.register_buffer("cos", angles.cos(), persistent=False)
            self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if self.rotary:
            cos, sin = self.cos[:t], self.sin[:t]  # type: ignore[index]  # registered buffers
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int, act: nn.Module, gated: bool):
        super().__init__()
        self.up = nn.Linear(d_model, 2 * hidden if gated else hidden)
        self.act = act
        self.down = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, context: int, hidden: int, act: nn.Module, gated: bool,
                 norm: str, rotary: bool):
        super().__init__()
        make_norm = (lambda: nn.RMSNorm(d_model)) if norm == "rms" else (lambda: nn.LayerNorm(d_model))
        self.norm1, self.norm2 = make_norm(), make_norm()
        self.attn = CausalSelfAttention(d_model, heads, context, rotary)
        self.mlp = MLP(d_model, hidden, act, gated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerLM(nn.Module):
    """Bytes in ``[batch, time]``, next-byte logits out as ``[batch, vocab, time]``."""

    def __init__(self, vocab: int, context: int, make_act: ActFactory, d_model: int = 64, layers: int = 2,
                 heads: int = 4, mlp_ratio: float = 4.0, norm: str = "layer", positions: str = "learned"):
        super().__init__()
        check_shape(d_model, heads, positions)
        probe = make_act()
        gated = getattr(getattr(probe, "spec", None), "kind", "elementwise") == "gated"
        self.hidden = hidden_width(d_model, mlp_ratio, gated)
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.randn(context, d_model) * 0.02) if positions == "learned" else None
        acts = [probe] + [make_act() for _ in range(layers - 1)]
        self.blocks = nn.ModuleList(Block(d_model, heads, context, self.hidden, acts[i], gated, norm,
                                          positions == "rotary") for i in range(layers))
        self.norm = nn.RMSNorm(d_model) if norm == "rms" else nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        nn.init.normal_(self.embed.weight, std=0.02)
        for name, p in self.named_parameters():
            if name.endswith("out.weight") or name.endswith("down.weight"):  # GPT-2's scaled residual init
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        if self.pos is not None:
            x = x + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)).transpose(1, 2)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
