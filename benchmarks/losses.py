"""Forward+backward time of zoo.losses against pytorch-metric-learning (PML), same process, interleaved.

Cases:
  * ArcFace, B=512, D=512, C=10,000 (s=64, m=0.5 rad): ``zoo.losses.ArcFaceLoss`` vs PML ``ArcFaceLoss``
    (margin=28.65 deg) with the same class-centre matrix.
  * batch-hard triplet, B=300 (20 identities x 15 images, the OpenFace batch of seeds 000/001), D=128,
    margin 0.2 on squared distances of unit-norm embeddings: ``TripletLoss(miner="batch_hard")`` vs PML
    ``TripletMarginLoss`` + ``BatchHardMiner`` with ``LpDistance(power=2)``.

  * Partial FC (An et al. 2021), B=512, D=512, C=100,000: ``ArcFaceLoss(sample_rate=r)`` for r = 0.1, 0.3,
    1.0 beside PML ``ArcFaceLoss`` (full softmax): time and peak memory of one forward+backward.

Each repetition times ours and PML's back to back (order rotating), after warm-up; the table reports
the median of N repetitions and the ratio of medians (ours / PML; < 1 means zoo is faster). Peak memory:
on CUDA ``torch.cuda.max_memory_allocated`` during the step; on CPU the growth of the peak resident set
(``VmHWM``) during one step, each case in a fresh subprocess (weights and inputs allocated before).

    python benchmarks/losses.py [--reps 30] [--big-reps 5] [--threads 2] [--device cpu] [--skip-big]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
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


def _arcface_pair(B: int, D: int, C: int, device, seed: int = 0, rates=(1.0,)):
    """zoo ArcFaceLoss (one per Partial FC rate) and PML ArcFaceLoss with the same centres, inputs."""
    g = torch.Generator().manual_seed(seed)
    ours = [ArcFaceLoss(D, C, scale=64.0, margin=0.5, sample_rate=r).to(device) for r in rates]
    for o in ours[1:]:
        o.load_state_dict(ours[0].state_dict())
    pml = pml_losses.ArcFaceLoss(num_classes=C, embedding_size=D, margin=math.degrees(0.5), scale=64).to(device)
    with torch.no_grad():
        pml.W.copy_(ours[0].weight.t())
    emb = torch.randn(B, D, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, C, (B,), generator=g).to(device)
    return ours, pml, emb, labels


def _rss_mib(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident set of this process, MiB (Linux). Not ``ru_maxrss``: that one is
    inherited from the parent across fork/exec, so a child of a large process would report the parent's peak."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def _peak_memory_case(args) -> None:
    """Subprocess entry: build one loss (rate r, or PML for 0), print the peak memory (MiB) of one fwd+bwd
    above what is allocated before it (centres, inputs)."""
    device = torch.device(args.device)
    rate = float(args.memory_case)
    B, D, C = 512, 512, 100_000
    g = torch.Generator().manual_seed(1)
    if rate > 0:
        fn = ArcFaceLoss(D, C, scale=64.0, margin=0.5, sample_rate=rate).to(device)
    else:
        fn = pml_losses.ArcFaceLoss(num_classes=C, embedding_size=D, margin=math.degrees(0.5), scale=64).to(device)
    emb = torch.randn(B, D, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, C, (B,), generator=g).to(device)
    params = list(fn.parameters())
    if device.type == "cuda":
        _step(fn, emb, labels, params, device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        _step(fn, emb, labels, params, device)
        print((torch.cuda.max_memory_allocated(device) - base) / 2**20)
    else:  # the first step: growth of the peak resident set above the current one
        base = _rss_mib()
        _step(fn, emb, labels, params, device)
        print(_rss_mib("VmHWM") - base)


def _peak_memory(rate: float, args) -> float:
    cmd = [sys.executable, __file__, "--memory-case", str(rate), "--device", args.device, "--threads",
           str(args.threads)]
    # every allocation >= 64 KiB gets its own mmap, returned at free: the resident set follows the live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.split()
    return float(out[-1])


def compare_many(fns, emb, labels, reps: int, warmup: int, device) -> list:
    """Median fwd+bwd seconds of each loss in ``fns``, timed round-robin (rotating start) after warm-up."""
    params = [list(f.parameters()) for f in fns]
    for _ in range(warmup):
        for f, p in zip(fns, params):
            _step(f, emb, labels, p, device)
    times = [[] for _ in fns]
    for i in range(reps):
        for j in range(len(fns)):
            k = (i + j) % len(fns)
            times[k].append(_step(fns[k], emb, labels, params[k], device))
    return [statistics.median(t) for t in times]


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
    ap.add_argument("--big-reps", type=int, default=5, help="repetitions of the C=100,000 Partial FC case")
    ap.add_argument("--skip-big", action="store_true", help="leave out the C=100,000 Partial FC case")
    ap.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)  # subprocess: rate, or 0 for PML
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_case is not None:
        return _peak_memory_case(args)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)

    rows = []
    # ArcFace: B=512, D=512, C=10,000
    B, D, C = 512, 512, 10_000
    (ours,), pml, emb, labels = _arcface_pair(B, D, C, device)
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

    big = []
    if not args.skip_big:  # Partial FC: B=512, D=512, C=100,000
        rates = (0.1, 0.3, 1.0)
        ours, pml, emb, labels = _arcface_pair(512, 512, 100_000, device, seed=1, rates=rates)
        times = compare_many([*ours, pml], emb, labels, args.big_reps, 1, device)
        for name, t, rate in zip([f"zoo ArcFaceLoss(sample_rate={r})" for r in rates] + ["PML ArcFaceLoss"],
                                 times, [*rates, 0.0]):
            big.append(f"| {name} | {t * 1e3:.0f} | {t / times[-1]:.2f} | {_peak_memory(rate, args):.0f} |")
        del ours, pml, emb, labels

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# zoo.losses vs pytorch-metric-learning: device={args.device} ({dev}), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, threads={args.threads}, median of {args.reps} interleaved reps after {args.warmup} warm-up")
    print("| case | zoo (ms) | PML (ms) | ratio zoo/PML |")
    print("|---|---|---|---|")
    for r in rows:
        print(r)
    if big:
        how = "cuda max_memory_allocated" if device.type == "cuda" else "peak RSS growth over the RSS before it, fresh process"
        print(f"\n# Partial FC, B=512, D=512, C=100,000 (s=64, m=0.5); median of {args.big_reps} round-robin reps; "
              f"peak memory of one fwd+bwd ({how})")
        print("| loss | fwd+bwd (ms) | time / PML | peak memory (MiB) |")
        print("|---|---|---|---|")
        for r in big:
            print(r)


if __name__ == "__main__":
    main()
