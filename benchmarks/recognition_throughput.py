"""Recognition training throughput: images/s of ``trainer.fit`` vs a plain PyTorch loop, same model/data/optimizer.

Models (as in configs/model): FaceNetTriplet (nn4small, 96 px RGB, 128-d, triplet loss with semi-hard mining) and
ArcFaceModel (timm resnet18 by default — the CPU choice for ``model=arcface`` — 112 px RGB, BN-Dropout-FC-BN 512-d,
ArcFace s=64 m=0.5 over 100 identities), channels_last, Adam lr 1e-3, gradient clipping 5 in both loops.
The plain loop is what a user would write: ``loss_fn(F.normalize(head(backbone(x))), y)`` with the same
``zoo.losses`` module (mean reduction), backward, clip, step. Data: an in-memory dataset of random images with
identity labels (decoding costs nothing, so the ratio isolates the module + Trainer overhead), batch 64,
DataLoader(num_workers=0, shuffle) in both. The Trainer runs without logger, checkpointing, progress bar or
validation. One untimed round of each warms the process up (allocator, thread pool); then rounds alternate
(plain, Lightning, ...) and the timed window excludes the first ``warmup`` steps of each. Figures are medians over
rounds (ratio of the medians) and, less sensitive to other jobs on a shared machine, the best round of each.

    python benchmarks/recognition_throughput.py [--steps 10] [--rounds 3] [--threads 2] [--arcface-backbone resnet18]
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

os.environ.setdefault("WANDB_MODE", "offline")

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from zoo.models.recognition import ArcFaceModel, FaceNetTriplet  # noqa: E402
from _timing import StepTimer  # benchmarks/_timing.py (scripts run from benchmarks/)


class RandomFaces(Dataset):
    def __init__(self, n: int, size: int, identities: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.identity = torch.arange(n) % identities

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "identity": self.identity[i], "index": torch.tensor(i)}


def adam(params):
    return torch.optim.Adam(params, lr=1e-3)


def make_model(kind: str, size: int, backbone: str, identities: int) -> L.LightningModule:
    torch.manual_seed(0)
    if kind == "facenet":
        return FaceNetTriplet(backbone="nn4small", channels=3, image_size=size, optimizer=adam, channels_last=True)
    return ArcFaceModel(backbone=backbone, channels=3, image_size=size, num_identities=identities, optimizer=adam,
                        channels_last=True)


def loader(ds: Dataset, batch: int) -> DataLoader:
    return DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=0,
                      generator=torch.Generator().manual_seed(0))


def plain(model: L.LightningModule, ds: Dataset, steps: int, warmup: int, batch: int) -> float:
    """Plain loop over the same backbone/head/loss modules (a fresh loss with mean reduction, same arguments)."""
    backbone, head = model.embedder.backbone.train(), model.embedder.head.train()
    if isinstance(model, FaceNetTriplet):
        from zoo.losses import TripletLoss

        loss_fn = TripletLoss(margin=model.loss.margin, miner=model.loss.miner)
    else:
        loss_fn = model.loss  # owns the class centres; its reduction is "none" -> mean below
    params = list(backbone.parameters()) + list(head.parameters()) + list(loss_fn.parameters())
    opt = adam([p for p in params if p.requires_grad])
    it, t0 = iter(loader(ds, batch)), None
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader(ds, batch))
            b = next(it)
        x = b["image"].contiguous(memory_format=torch.channels_last)
        emb = F.normalize(head(backbone(x)), dim=1)
        loss = loss_fn(emb, b["identity"]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def lightning(model: L.LightningModule, ds: Dataset, steps: int, warmup: int, batch: int) -> float:
    timer = StepTimer(warmup)
    trainer = L.Trainer(max_steps=warmup + steps, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], gradient_clip_val=5.0, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(model, loader(ds, batch))
    return steps * batch / (timer.t1 - timer.t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arcface-backbone", default="resnet18")
    ap.add_argument("--models", default="facenet,arcface")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for kind in a.models.split(","):
        size, ids = (96, 16) if kind == "facenet" else (112, 100)
        ds = RandomFaces(a.batch * 8, size, ids)
        base = make_model(kind, size, a.arcface_backbone, ids)
        pl_rates, lt_rates = [], []
        plain(copy.deepcopy(base), ds, 1, 1, a.batch)
        lightning(copy.deepcopy(base), ds, 1, 1, a.batch)
        for _ in range(a.rounds):
            p = plain(copy.deepcopy(base), ds, a.steps, a.warmup, a.batch)
            q = lightning(copy.deepcopy(base), ds, a.steps, a.warmup, a.batch)
            pl_rates.append(p)
            lt_rates.append(q)
        name = ("FaceNetTriplet (nn4small, 96 px, semi-hard triplet)" if kind == "facenet" else
                f"ArcFaceModel ({a.arcface_backbone}, 112 px, 512-d, ArcFace 100 ids)")
        pm, lm = statistics.median(pl_rates), statistics.median(lt_rates)
        rows.append(f"| {name}, batch {a.batch}, CPU {a.threads} threads | {pm:.1f} (best {max(pl_rates):.1f}) | "
                    f"{lm:.1f} (best {max(lt_rates):.1f}) | {lm / pm:.3f} (best {max(lt_rates) / max(pl_rates):.3f})"
                    f" | >= 0.95 |")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
          f"torch {torch.__version__}, lightning {L.__version__}, threads {a.threads}, batch {a.batch}, "
          f"{a.steps} timed steps x {a.rounds} rounds")
    print("| benchmark | plain PyTorch images/s | trainer.fit images/s | ratio of medians (of bests) | target |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
