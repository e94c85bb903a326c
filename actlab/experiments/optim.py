"""The optimizer step over dicts of tensors, shared by the seed-vectorized trainer (tensors with a leading seed
dimension: every update is elementwise, so each seed's slice gets exactly its own update) and the per-seed loop.

It drives PyTorch's own optimizers with ``fused=True`` (one pass over all parameters; on 2 CPU cores 0.25 ms
instead of 8.4 ms for an op-by-op AdamW over the 10-seed MNIST-1D MLP), falling back to ``foreach``.
"""

from __future__ import annotations

import math

import torch

from actlab.experiments.recipe import Recipe


class FunctionalOptimizer:
    """AdamW (decoupled decay), Adam (L2 added to the gradient) or SGD with momentum, with a cosine or constant
    learning-rate schedule over ``total_steps``.

    Weight decay applies to weight matrices and kernels only (``decay[name]``), not to biases, norm scales or
    activation parameters such as a trainable swish beta, which decay would drag toward 0.
    """

    def __init__(self, recipe: Recipe, params: dict[str, torch.Tensor], decay: dict[str, bool], total_steps: int,
                 lr: float | None = None):
        self.recipe = recipe
        self.lr = recipe.lr if lr is None else lr
        self.total = max(total_steps, 1)
        self.t = 0
        self.names = list(params)
        groups = [
            {"params": [params[k] for k in self.names if decay[k]], "weight_decay": recipe.weight_decay},
            {"params": [params[k] for k in self.names if not decay[k]], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        self.tensors = {k: params[k] for k in self.names}
        self.opt = self._build(groups)

    def _build(self, groups):
        r = self.recipe
        cls, kwargs = {
            "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8}),
            "adam": (torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8}),
            "sgd": (torch.optim.SGD, {"momentum": r.momentum}),
        }[r.optimizer]
        for impl in ({"fused": True}, {"foreach": True}, {}):
            try:
                opt = cls(groups, lr=self.lr, **kwargs, **impl)
                if impl.get("fused"):  # fused support is checked lazily; probe it on this device now
                    self._probe(cls, kwargs, impl)
                return opt
            except (RuntimeError, TypeError, ValueError):
                continue
        raise RuntimeError(f"no usable implementation of {cls.__name__}")  # pragma: no cover

    def _probe(self, cls, kwargs, impl):
        any_param = next(iter(self.tensors.values()))
        p = torch.zeros(2, dtype=any_param.dtype, device=any_param.device)
        p.grad = torch.zeros_like(p)
        cls([p], lr=1.0, **kwargs, **impl).step()

    def current_lr(self) -> float:
        if self.recipe.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(self.t, self.total) / self.total))
        return self.lr

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        lr = self.current_lr()
        self.t += 1
        for group in self.opt.param_groups:
            group["lr"] = lr
        for k in self.names:
            # contiguous(): the fused CPU kernel silently mis-applies non-contiguous gradients (a transposed
            # weight gradient from bmm), found when batched layers trained no better than chance.
            self.tensors[k].grad = grads[k].contiguous()
        self.opt.step()
        for k in self.names:
            self.tensors[k].grad = None
