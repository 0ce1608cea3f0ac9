"""BB vs BBO: wall time of one training epoch of ``experiment=fuhl_bb`` over ``experiment=fuhl_bbo`` (seed 002).

Both presets train the same model on the same data (``data=afw_helen``, ../shared/data) with the paper's
augmentation (``augment=fuhl2019``, the presets' default); BB adds a refresh of every training sample's loss every
``refresh_every`` (0.1) of an epoch. Each run is ``train.py`` composed in-process (zoo.run.train) with validation,
checkpoints and the logger off, so an epoch is training (+ BB's refreshes) only. The first epoch of every run is
left out (worker start-up; BB's first refresh reads the un-augmented images before they are cached). Runs
alternate BBO, BB, BBO, BB ... and each ratio is taken within one BBO/BB pair, so a change in background load
between pairs does not enter a ratio; the table gives the median over pairs. ``--busy 1`` repeats the measurement
with one extra process spinning on the CPU (the machine busy with a second job); it inherits this process's
niceness. The CPU-time ratio (this process + its DataLoader workers, from /proc) is printed beside the wall ratio:
it moves less with other jobs' load than wall time does, but spinning OpenMP threads inflate it when the cores
are oversubscribed (the busy condition). Target (issue 11): ratio <= 4 at
refresh_every=0.1, idle and busy.

    python benchmarks/bb_epoch.py [--size 96] [--train-fraction 1.0] [--epochs 3] [--pairs 1] [--busy 0,1]
        [--refresh-every 0.1] [--workers 2] [--batch 64] [--threads 2] [--refresh-view plain]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from _timing import Busy  # noqa: E402
from zoo.run import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ZOO_SHARED_DATA", REPO.parent / "shared" / "data"))


def epoch_seconds(variant: str, a: argparse.Namespace) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of each training epoch of one run of ``experiment=fuhl_<variant>``, and BB's refresh
    count."""
    overrides = [
        f"experiment=fuhl_{variant}", "data=afw_helen", f"data.data_dir={DATA.resolve()}", f"data.image_size={a.size}",
        f"data.batch_size={a.batch}", f"data.num_workers={a.workers}", f"data.train_fraction={a.train_fraction}",
        "~logger", "test=false", f"paths.output_dir={Path(a.out).resolve() / variant}",
        f"trainer.max_epochs={a.epochs}", "trainer.check_val_every_n_epoch=100000", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "+trainer.enable_checkpointing=false",
        "~callbacks.model_checkpoint", "~callbacks.step_checkpoint", "~callbacks.visual_logging",
        "+callbacks.epoch_timer._target_=_timing.EpochTimer",
    ]
    if variant == "bb":
        overrides += [f"sampler.refresh_every={a.refresh_every}", f"sampler.refresh_view={a.refresh_view}"]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    res = train(cfg)
    cbs = res["trainer"].callbacks
    timer = next(cb for cb in cbs if type(cb).__name__ == "EpochTimer")
    refreshes = next((cb.refreshes for cb in cbs if type(cb).__name__ == "LossFeedback"), 0)
    return timer.seconds, timer.cpu, refreshes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-fraction", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=3, help="per run; the first is not timed")
    ap.add_argument("--pairs", type=int, default=1, help="BBO/BB pairs per load condition")
    ap.add_argument("--busy", default="0,1", help="extra spinning processes per condition, e.g. 0,1")
    ap.add_argument("--refresh-every", type=float, default=0.1)
    ap.add_argument("--refresh-view", default="plain", choices=["plain", "augmented"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "outputs" / "bench_bb_epoch"))
    a = ap.parse_args()
    if a.epochs < 2:
        ap.error("--epochs must be >= 2 (the first epoch is not timed)")
    if not (DATA / "afw_68").is_dir():
        raise SystemExit(f"{DATA / 'afw_68'} is absent: this benchmark needs the real faces of ../shared/data")
    torch.set_num_threads(a.threads)
    rows = []
    for busy in [int(b) for b in a.busy.split(",")]:
        with Busy(busy):
            ratios, cpu_ratios, times = [], [], {"bbo": [], "bb": [], "bbo_cpu": [], "bb_cpu": []}
            load0 = os.getloadavg()[0]
            refreshes = 0
            for _ in range(a.pairs):
                for v in ("bbo", "bb"):
                    secs, cpu, n = epoch_seconds(v, a)
                    times[v].append(statistics.median(secs[1:]))
                    times[f"{v}_cpu"].append(statistics.median(cpu[1:]))
                    refreshes = n if v == "bb" else refreshes
                    print(f"[bench] busy={busy} {v}: epochs {[round(s, 1) for s in secs]} s wall, "
                          f"{[round(c, 1) for c in cpu]} s CPU", flush=True)
                ratios.append(times["bb"][-1] / times["bbo"][-1])
                cpu_ratios.append(times["bb_cpu"][-1] / times["bbo_cpu"][-1])
            load1 = os.getloadavg()[0]
        rows.append((busy, statistics.median(times["bbo"]), statistics.median(times["bb"]), statistics.median(ratios),
                     statistics.median(cpu_ratios), refreshes // a.epochs, (load0 + load1) / 2))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {a.threads} threads, "
          f"nice {os.nice(0)}; afw_68 + helen_train_68, train fraction {a.train_fraction}, {a.size}px gray, batch "
          f"{a.batch}, {a.workers} workers, augment=fuhl2019, BB refresh every {a.refresh_every} epoch "
          f"(refresh_view={a.refresh_view}), median of epochs 2..{a.epochs}, {a.pairs} pair(s); {time.strftime('%F %T')}")
    print("| machine | BBO epoch (s) | BB epoch (s) | BB / BBO wall | BB / BBO CPU | refreshes per epoch | target | "
          "load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for busy, bbo, bb, ratio, cpu_ratio, per_epoch, load in rows:
        what = "idle (of this benchmark)" if busy == 0 else f"+{busy} busy process{'es' if busy > 1 else ''}"
        print(f"| {what} | {bbo:.1f} | {bb:.1f} | {ratio:.2f}x | {cpu_ratio:.2f}x | {per_epoch} | <= 4x | {load:.1f} |")


if __name__ == "__main__":
    main()
