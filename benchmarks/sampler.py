"""Benchmark: LPBB sampler cost per batch vs one training step of the default landmark model.

Measures, in one process:
  * the LPBB sampler's draw (one batch of indices through ``iter(sampler)``) + ``update`` of that batch's
    losses + ``mark_trained`` at n = 10^6 samples, batch 64 (median over ``--batches`` batches), for the
    paper's defaults and for all extensions on (initial_loss=max, floor, temperature, uniform_mix);
  * for reference, the naive O(n) alternative: rewrite the 64 losses, ``torch.cumsum`` over all n,
    ``torch.searchsorted`` (what the sum tree avoids);
  * one training step (forward, loss, backward, SGD step) of the seed-002 net (``zoo.models.backbones``
    "fuhl2019" + ``zoo.models.heads.LandmarkHead``, 68 landmarks with validation head, grayscale 96 px,
    channels_last, batch 64) -- a stand-in CNN of similar cost if those modules are missing (reported).

Prints one markdown table row per sampler variant: cost per batch, step time and the ratio (target <= 2%).
Usage: python benchmarks/sampler.py [--n 1000000] [--batch 64] [--threads 2] [--steps 5] [--batches 300]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from zoo.datamodules.samplers.lpbb import LPBBSampler  # noqa: E402


def _model(num_landmarks: int = 68) -> tuple[nn.Module, str]:
    try:
        from zoo.models.backbones import create_backbone
        from zoo.models.heads import LandmarkHead
    except ImportError as e:  # pragma: no cover - only before zoo.models exists
        print(f"zoo.models unavailable ({e}); using a stand-in CNN", file=sys.stderr)
        net = nn.Sequential(nn.Conv2d(1, 32, 5, 2, 2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                            nn.Conv2d(64, 128, 3, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
                            nn.Conv2d(128, 256, 3, 2, 1), nn.BatchNorm2d(256), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(2304, 256), nn.ReLU(),
                            nn.Linear(256, 3 * num_landmarks))
        return net, "stand-in CNN"

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = create_backbone("fuhl2019", in_chans=1)
            self.head = LandmarkHead(self.backbone.num_features, num_landmarks, validation=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            xy, v = self.head(self.backbone(x))
            return torch.cat([xy.flatten(1), v], 1)

    return Net(), "seed-002 net (fuhl2019 + LandmarkHead)"


def time_train_step(batch: int, size: int, steps: int) -> tuple[float, str]:
    net, name = _model()
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randn(batch, 3 * 68)
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        loss = (net(x) - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if k:  # the first step warms up allocators
            times.append(time.perf_counter() - t0)
    return statistics.median(times), name


def time_sampler(n: int, batch: int, batches: int, **kw) -> float:
    rng = np.random.default_rng(0)
    s = LPBBSampler(range(n), batch_size=batch, num_samples=batch * (batches + 10), **kw)
    s.update(np.arange(n), rng.gamma(2.0, 1.0, n))  # a full table: the tree at its final size
    it = iter(s)
    times = []
    for k in range(batches):
        t0 = time.perf_counter()
        idx = [next(it) for _ in range(batch)]
        s.update(idx, rng.gamma(2.0, 1.0, batch))
        s.mark_trained(k + 1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_naive(n: int, batch: int, batches: int) -> float:
    g = torch.Generator().manual_seed(0)
    table = torch.rand(n, dtype=torch.float64, generator=g)
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch,), generator=g)
        table[idx] = torch.rand(batch, dtype=torch.float64, generator=g)
        cs = torch.cumsum(table, 0)
        torch.searchsorted(cs, torch.rand(batch, dtype=torch.float64, generator=g) * cs[-1])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batches", type=int, default=300)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    step, model_name = time_train_step(a.batch, a.size, a.steps)
    variants = {
        "LPBB, paper defaults": {},
        "LPBB, initial_loss=max, floor, T=0.5, uniform_mix=0.1": dict(initial_loss="max", floor=0.1,
                                                                       temperature=0.5, uniform_mix=0.1),
    }
    rows = [(name, time_sampler(a.n, a.batch, a.batches, **kw)) for name, kw in variants.items()]
    rows.append(("naive: cumsum + searchsorted per batch (not used)", time_naive(a.n, a.batch, min(a.batches, 50))))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch {torch.__version__}, {a.threads} threads; train step: {model_name}, batch {a.batch}, "
          f"{a.size}px gray, median of {a.steps} steps; sampler: n = {a.n:,}, batch {a.batch}, "
          f"median of {a.batches} batches (draw + update + mark_trained)\n")
    print("| sampler | n | cost per batch (ms) | train step (s) | fraction of a step | target |")
    print("|---|---|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {a.n:,} | {t * 1e3:.3f} | {step:.3f} | {100 * t / step:.3f}% | <= 2% |")


if __name__ == "__main__":
    main()
