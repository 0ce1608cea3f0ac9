"""Fraction of training-step time spent waiting for data with ``data=gan_augmented`` (issue 9: target <= 10 %).

The experiment's data (``experiment=cheng_gan_augment``: afw_helen at 64 px grayscale + filtered GAN copies, batch
32) feeds the seed-002 net (fuhl2019 + linear head, L1, SGD) through the datamodule's own train DataLoader with
``--workers`` workers, as ``python train.py`` does. The GAN work (inversion, edits, filter) happens once at setup
and is cached on disk: this measures the training loop only (run the experiment, or ``--build``, first; the setup
time is printed apart). Baseline in the same process: the same steps on one cached batch (pure compute), and the
same loop on the base data alone (``copies=0``). Prints a markdown table.

    python benchmarks/gan_dataloading.py [--steps 40] [--workers 2] [overrides ...]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from _timing import cached_step_seconds, measure_data_wait
from synth_dataloading import landmark_l1_step

REPO = Path(__file__).resolve().parents[1]


def datamodule(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=cheng_gan_augment", "paths.output_dir=/tmp/gan_bench",
                                          *overrides])
    return instantiate(cfg.data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    step, name = landmark_l1_step()

    rows = []
    for label, extra in (("afw_helen 64 px + GAN copies (filtered)", []), ("afw_helen 64 px alone (copies=0)",
                                                                            ["data.copies=0"])):
        t = time.perf_counter()
        dm = datamodule([f"data.num_workers={args.workers}", *extra, *args.overrides])
        dm.setup("fit")
        setup = time.perf_counter() - t
        ds = dm.datasets["train"]
        wait, compute, batch = measure_data_wait(dm.train_dataloader(), step, args.steps, args.warmup)
        base = cached_step_seconds(step, batch, args.steps)
        total = wait + compute
        rows.append(f"| {label} ({ds.n_real} real + {ds.n_gan} GAN) | {setup:.1f} | {total / args.steps:.3f} | "
                    f"{compute / args.steps:.3f} | {base:.3f} | {100 * wait / total:.1f} % | <= 10 % |")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, torch threads "
          f"{torch.get_num_threads()}, {args.workers} workers, batch 32, 64 px gray, {args.steps} steps, {name}")
    print("| data | setup s (cache hit) | s/step (with loader) | of which compute | s/step (cached batch) | data wait | target |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
