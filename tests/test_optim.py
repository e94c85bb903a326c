"""The shared optimizer step: each seed's slice of a stacked tensor gets exactly the update it would get alone."""

from __future__ import annotations

import pytest
import torch

from actlab.experiments.training.optim import FunctionalOptimizer
from actlab.experiments.workload.recipe import Recipe


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_stacked_update_equals_per_seed_updates_even_for_transposed_gradients(optimizer):
    recipe = Recipe(optimizer=optimizer, lr=0.1, weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 5, 4, generator=g)
    grads = [torch.randn(3, 4, 5, generator=g).transpose(1, 2) for _ in range(3)]  # non-contiguous, like bmm's
    stacked = {"w": w.clone()}
    opt = FunctionalOptimizer(recipe, stacked, {"w": True}, total_steps=10)
    singles = [{"w": w[s].clone()} for s in range(3)]
    single_opts = [FunctionalOptimizer(recipe, p, {"w": True}, total_steps=10) for p in singles]
    for grad in grads:
        opt.step(stacked, {"w": grad})
        for s in range(3):
            single_opts[s].step(singles[s], {"w": grad[s].contiguous()})
    for s in range(3):
        torch.testing.assert_close(stacked["w"][s], singles[s]["w"], rtol=1e-6, atol=1e-7)


def test_cosine_schedule_and_no_decay_on_excluded_parameters():
    recipe = Recipe(optimizer="adamw", lr=1.0, weight_decay=0.5, schedule="cosine")
    params = {"w": torch.ones(2, 2), "beta": torch.ones(())}
    opt = FunctionalOptimizer(recipe, params, {"w": True, "beta": False}, total_steps=4)
    assert opt.current_lr() == 1.0
    opt.step(params, {"w": torch.zeros(2, 2), "beta": torch.zeros(())})
    assert params["beta"].item() == 1.0  # zero gradient and no decay: untouched
    assert params["w"][0, 0].item() == pytest.approx(0.5)  # decoupled decay lr * wd
    assert opt.current_lr() == pytest.approx(0.5 * (1 + __import__("math").cos(__import__("math").pi / 4)))


@pytest.mark.parametrize("optimizer", ["adamw", "adam"])
def test_direct_fused_step_gives_torch_optims_bits(optimizer):
    """Adam/AdamW run torch's fused kernel directly: per lr block and decay group, every step equals
    torch.optim's fused optimizer bit for bit (cosine schedule included)."""
    recipe = Recipe(optimizer=optimizer, lr=0.01, weight_decay=0.05)
    g = torch.Generator().manual_seed(1)
    params = {"w": torch.randn(4, 6, 5, generator=g), "b": torch.randn(4, 6, generator=g)}
    rates = [0.01, 0.01, 0.03, 0.003]
    ours = {k: v.clone() for k, v in params.items()}
    opt = FunctionalOptimizer(recipe, ours, {"w": True, "b": False}, total_steps=6, lr=rates)
    assert opt.kernel is not None
    theirs = {k: v.clone() for k, v in params.items()}
    cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    blocks = [(0.01, slice(0, 2)), (0.03, slice(2, 3)), (0.003, slice(3, 4))]
    members = [(rate, rows, name, wd) for rate, rows in blocks for name, wd in (("w", 0.05), ("b", 0.0))]
    groups = [{"params": [theirs[name][rows]], "lr": rate, "base_lr": rate, "weight_decay": wd}
              for rate, rows, name, wd in members]
    reference = cls(groups, betas=(0.9, 0.999), eps=1e-8, fused=True)
    for _ in range(5):
        grads = {k: torch.randn(v.shape, generator=g) for k, v in params.items()}
        factor = opt.schedule_factor()
        opt.step(ours, grads)
        for group, (_, rows, name, _) in zip(reference.param_groups, members):
            group["lr"] = group["base_lr"] * factor
            group["params"][0].grad = grads[name][rows]
        reference.step()
    for k in params:
        assert torch.equal(ours[k], theirs[k]), k


def test_sgd_still_runs_through_torch_optim():
    opt = FunctionalOptimizer(Recipe(optimizer="sgd", lr=0.1), {"w": torch.ones(3)}, {"w": True}, total_steps=2)
    assert opt.kernel is None and isinstance(opt.opt, torch.optim.SGD)


def test_parameters_of_mixed_types_go_through_torch_optim():
    """The direct kernel call takes one dtype per call; torch.optim groups by type itself."""
    params = {"w": torch.ones(2, 3), "v": torch.ones(3, dtype=torch.float64)}
    opt = FunctionalOptimizer(Recipe(lr=0.1), params, {"w": True, "v": False}, total_steps=2)
    assert opt.kernel is None
    opt.step(params, {"w": torch.ones(2, 3), "v": torch.ones(3, dtype=torch.float64)})
    assert params["w"][0, 0].item() < 1.0 and params["v"][0].item() < 1.0
