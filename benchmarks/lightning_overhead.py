"""Lightning overhead: steps/s of ``trainer.fit`` vs a plain PyTorch loop, same model, data and optimizer.

Model: the default LandmarkRegressor (seed-002 net + validation head, 68 points, 96-px grayscale,
channels_last), SGD momentum 0.9, gradient clipping 5 in both loops. Data: an in-memory dataset of random
crops (decoding costs nothing, so the ratio isolates the training-loop overhead), batch 64,
DataLoader with num_workers=0 in both. The Trainer runs (the model applies its loss schedule and NaN guard itself) and
no logger/checkpointing/progress bar. Rounds alternate (plain, Lightning, plain, ...) and the timed
window excludes the first ``warmup`` steps; the figure is the median ratio over rounds.

    python benchmarks/lightning_overhead.py [--steps 20] [--rounds 3] [--threads 2] [--size 96]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("WANDB_MODE", "offline")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from zoo.models.landmark import LandmarkRegressor  # noqa: E402
from _timing import StepTimer  # benchmarks/_timing.py (scripts run from benchmarks/)


class RandomCrops(Dataset):
    def __init__(self, n: int, size: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 1, size, size, generator=g)
        self.landmarks = torch.rand(n, 68, 2, generator=g) * (size * 0.6) + size * 0.2

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "landmarks": self.landmarks[i], "visible": torch.ones(68, dtype=torch.bool),
                "norm": torch.tensor(30.0), "index": torch.tensor(i)}


def make_model(size: int) -> LandmarkRegressor:
    torch.manual_seed(0)
    return LandmarkRegressor(num_landmarks=68, image_size=size, channels=1, scheme="ibug68",
                             optimizer=lambda p: torch.optim.SGD(p, lr=0.005, momentum=0.9, weight_decay=5e-4))


def plain(ds: Dataset, size: int, steps: int, warmup: int, batch: int) -> float:
    model = make_model(size).train()
    opt = model.optimizer_factory(model.parameters())
    loader = DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=0)
    it, t0 = iter(loader), None
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        model._maybe_init_anchor(b)
        model.criterion.weight = model.current_validation_weight(step)
        loss = model.loss_parts(model(b["image"]), b).total.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return steps / (time.perf_counter() - t0)


def lightning(ds: Dataset, size: int, steps: int, warmup: int, batch: int) -> float:
    model = make_model(size)
    timer = StepTimer(warmup)
    trainer = L.Trainer(max_steps=warmup + steps, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], gradient_clip_val=5.0,
                        limit_val_batches=0, num_sanity_val_steps=0)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=0)
    trainer.fit(model, loader)
    return steps / (timer.t1 - timer.t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = RandomCrops(a.batch * 8, a.size)
    ratios, pl_rates, lt_rates = [], [], []
    for _ in range(a.rounds):
        p = plain(ds, a.size, a.steps, a.warmup, a.batch)
        q = lightning(ds, a.size, a.steps, a.warmup, a.batch)
        pl_rates.append(p)
        lt_rates.append(q)
        ratios.append(q / p)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
          f"torch {torch.__version__}, lightning {L.__version__}, threads {a.threads}, batch {a.batch}, "
          f"{a.size}px gray, {a.steps} timed steps x {a.rounds} rounds")
    print("| benchmark | plain PyTorch steps/s | trainer.fit steps/s | ratio (median) | target |")
    print("|---|---|---|---|---|")
    print(f"| Lightning overhead (seed-002 net, batch {a.batch}, {a.size}px, CPU {a.threads} threads) | "
          f"{statistics.median(pl_rates):.2f} | {statistics.median(lt_rates):.2f} | "
          f"{statistics.median(ratios):.3f} | >= 0.95 |")


if __name__ == "__main__":
    main()
