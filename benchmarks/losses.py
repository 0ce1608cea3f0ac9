"""Forward+backward time of zoo.losses against pytorch-metric-learning (PML), same process, interleaved.

Cases:
  * ArcFace, B=512, D=512, C=10,000 (s=64, m=0.5 rad): ``zoo.losses.ArcFaceLoss`` vs PML ``ArcFaceLoss``
    (margin=28.65 deg) with the same class-centre matrix.
  * batch-hard triplet, B=300 (20 identities x 15 images, the OpenFace batch of seeds 000/001), D=128,
    margin 0.2 on squared distances of unit-norm embeddings: ``TripletLoss(miner="batch_hard")`` vs PML
    ``TripletMarginLoss`` + ``BatchHardMiner`` with ``LpDistance(power=2)``.

Each repetition times ours and PML's back to back (order alternating), after warm-up; the table reports
the median of N repetitions and the ratio of medians (ours / PML; < 1 means zoo is faster).

    python benchmarks/losses.py [--reps 30] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytorch_metric_learning import distances as pml_distances  # noqa: E402
from pytorch_metric_learning import losses as pml_losses  # noqa: E402
from pytorch_metric_learning import miners as pml_miners  # noqa: E402
from pytorch_metric_learning import reducers as pml_reducers  # noqa: E402

from zoo.losses import ArcFaceLoss, TripletLoss  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _step(fn, emb: torch.Tensor, labels: torch.Tensor, params, device: torch.device) -> float:
    emb.grad = None
    for p in params:
        p.grad = None
    _sync(device)
    t0 = time.perf_counter()
    loss = fn(emb, labels)
    loss.backward()
    _sync(device)
    return time.perf_counter() - t0


def compare(name: str, ours, pml, emb, labels, reps: int, warmup: int, device) -> str:
    ours_params, pml_params = list(ours.parameters()), list(pml.parameters())
    for _ in range(warmup):
        _step(ours, emb, labels, ours_params, device)
        _step(pml, emb, labels, pml_params, device)
    t_ours, t_pml = [], []
    for i in range(reps):
        if i % 2 == 0:
            t_ours.append(_step(ours, emb, labels, ours_params, device))
            t_pml.append(_step(pml, emb, labels, pml_params, device))
        else:
            t_pml.append(_step(pml, emb, labels, pml_params, device))
            t_ours.append(_step(ours, emb, labels, ours_params, device))
    mo, mp = statistics.median(t_ours), statistics.median(t_pml)
    return f"| {name} | {mo * 1e3:.2f} | {mp * 1e3:.2f} | {mo / mp:.2f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)

    rows = []
    # ArcFace: B=512, D=512, C=10,000
    B, D, C = 512, 512, 10_000
    ours = ArcFaceLoss(D, C, scale=64.0, margin=0.5).to(device)
    pml = pml_losses.ArcFaceLoss(num_classes=C, embedding_size=D, margin=math.degrees(0.5), scale=64).to(device)
    with torch.no_grad():
        pml.W.copy_(ours.weight.t())
    emb = torch.randn(B, D, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, C, (B,), generator=g).to(device)
    with torch.no_grad():
        lo, lp = ours(emb, labels).item(), pml(emb, labels).item()
    assert abs(lo - lp) <= 1e-3 * max(1.0, abs(lp)), (lo, lp)
    rows.append(compare(f"ArcFace fwd+bwd (B={B}, D={D}, C={C:,})", ours, pml, emb, labels,
                        args.reps, args.warmup, device))

    # batch-hard triplet: B=300 = 20 x 15, D=128
    B, D = 300, 128
    ours = TripletLoss(margin=0.2, distance="squared_euclidean", miner="batch_hard")
    dist = pml_distances.LpDistance(normalize_embeddings=True, p=2, power=2)
    miner = pml_miners.BatchHardMiner(distance=dist)
    pml_loss = pml_losses.TripletMarginLoss(margin=0.2, distance=dist, reducer=pml_reducers.MeanReducer())

    class PMLBatchHard(torch.nn.Module):
        def forward(self, e, y):
            return pml_loss(e, y, miner(e, y))

    pml = PMLBatchHard()
    emb = torch.randn(B, D, generator=g).to(device).requires_grad_()
    labels = torch.arange(20).repeat_interleave(15).to(device)
    with torch.no_grad():
        lo, lp = ours(emb, labels).item(), pml(emb, labels).item()
    assert abs(lo - lp) <= 1e-4 * max(1.0, abs(lp)), (lo, lp)
    rows.append(compare(f"batch-hard triplet fwd+bwd (B={B} = 20x15, D={D})", ours, pml, emb, labels,
                        args.reps, args.warmup, device))

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# zoo.losses vs pytorch-metric-learning: device={args.device} ({dev}), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, threads={args.threads}, median of {args.reps} interleaved reps after {args.warmup} warm-up")
    print("| case | zoo (ms) | PML (ms) | ratio zoo/PML |")
    print("|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
