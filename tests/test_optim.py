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
