"""What `actlab compare swish leaky_relu` does, written the way a careful user would without actlab: one model
at a time, PyTorch's own modules (nn.SiLU, nn.LeakyReLU), torch.optim.AdamW with a cosine schedule.

The same work as the flagship: for each activation, every lr of the grid {1e-2/3, 1e-2, 3e-2} x 2 seeds on a
validation split (20% of the training data), the best lr by mean validation accuracy, then 10 seeds at that lr,
25 epochs of batch 100, the test set evaluated after every epoch (the learning curves), and a paired t interval
and Wilcoxon test at the end. Run: python benchmarks/naive_compare.py  (prints the wall time)
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from actlab.experiments.workload.data import mnist1d

GRID = (0.00333, 0.01, 0.03)
EPOCHS, BATCH, WD = 25, 100, 0.05
ACTIVATIONS = {"swish": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def model(act: type[nn.Module]) -> nn.Module:
    return nn.Sequential(nn.Linear(40, 256), act(), nn.Linear(256, 256), act(), nn.Linear(256, 10))


def train(act, lr, seed, x, y, x_eval, y_eval) -> float:
    torch.manual_seed(seed)
    net = model(act)
    decay = [p for p in net.parameters() if p.dim() >= 2]
    rest = [p for p in net.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}], lr=lr)
    steps = EPOCHS * math.ceil(len(x) / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)))
    g = torch.Generator().manual_seed(seed)
    acc = 0.0
    for _ in range(EPOCHS):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            acc = float((net(x_eval).argmax(-1) == y_eval).float().mean())
    return acc


def main() -> None:
    start = time.perf_counter()
    data = mnist1d()
    rng = np.random.default_rng(0)
    val = rng.permutation(len(data.y_train))[: len(data.y_train) // 5]
    keep = np.setdiff1d(np.arange(len(data.y_train)), val)
    finals = {}
    for name, act in ACTIVATIONS.items():
        curve = {lr: np.mean([train(act, lr, s, data.x_train[keep], data.y_train[keep], data.x_train[val],
                                    data.y_train[val]) for s in range(2)]) for lr in GRID}
        lr = max(curve, key=curve.get)
        finals[name] = [train(act, lr, s, data.x_train, data.y_train, data.x_test, data.y_test) for s in range(10)]
        print(f"{name}: lr {lr:g}, test accuracy {100 * np.mean(finals[name]):.2f}%")
    diff = np.subtract(*finals.values())
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff))
    p = stats.wilcoxon(*finals.values()).pvalue
    print(f"difference {100 * diff.mean():+.2f} [{100 * (diff.mean() - half):+.2f}, {100 * (diff.mean() + half):+.2f}]"
          f" points, Wilcoxon p = {p:.3g}")
    print(f"wall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
