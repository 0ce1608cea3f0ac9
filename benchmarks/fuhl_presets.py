"""The paper's four variants (seed 002: NON, NOBB, BBO, BB) at EQUAL WALL TIME on real 300-W faces.

Each preset runs as ``python train.py experiment=fuhl_<v> data=afw_helen`` (composed in-process through Hydra, so
with the presets' own settings, including the paper's augmentation ``augment=fuhl2019``) for the same wall-clock
budget ``trainer.max_time``; the best checkpoint (val NME) is then tested on the held-out test split of
``data=afw_helen`` (../shared/data/afw_68 + helen_train_68, 80/10/10 by photo): inter-ocular NME, FR/AUC@0.08, the
validation-signal discard table and Spearman. BB gets fewer epochs in the same time than BBO: that is the point.

The presets' loss schedule (L2 -> L1 -> Wing at 0 / 45 / 90 %) and the cosine learning rate are fractions of
``trainer.max_epochs``, which a time budget does not fix in advance. :class:`TimeBudget` makes them fractions of the
budget instead: before every epoch it sets ``max_epochs`` to the number of epochs the budget is projected to hold
(elapsed time per finished epoch) and the learning rate to the cosine at the elapsed fraction of the budget, so
every variant passes through the same stages at the same fractions of its time. ``max_time`` stops the run.

    python benchmarks/fuhl_presets.py [--minutes 30] [--variants non,nobb,bbo,bb] [--size 96] [--batch 64]
        [--train-fraction 1.0] [--workers 2] [--threads 2] [--out outputs/bench_fuhl_presets]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from zoo.run import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ZOO_SHARED_DATA", REPO.parent / "shared" / "data"))


class TimeBudget(L.Callback):
    """Loss-stage and cosine learning-rate schedules as fractions of a wall-time budget (module docstring).

    Before epoch e (e >= 1) with a fraction f = elapsed / budget used: ``trainer.fit_loop.max_epochs`` =
    max(e + 2, round(e / f)) (the projected epoch count, so ``fraction`` stages start at the same share of the
    time), lr = eta_min + (lr0 - eta_min) (1 + cos(pi f)) / 2 per parameter group (cosine over the budget).
    Runs before the model's own ``on_train_epoch_start`` (Lightning calls callbacks first), where the stage is
    picked."""

    def __init__(self, seconds: float, eta_min: float = 1e-5) -> None:
        self.seconds, self.eta_min = float(seconds), float(eta_min)
        self.t0: float | None = None
        self.base: list[float] = []

    def on_train_start(self, trainer, pl_module):
        self.t0 = time.perf_counter()
        self.base = [g["lr"] for opt in trainer.optimizers for g in opt.param_groups]

    def on_train_epoch_start(self, trainer, pl_module):
        e = trainer.current_epoch
        if e == 0 or self.t0 is None:
            return
        f = min(1.0, (time.perf_counter() - self.t0) / self.seconds)
        trainer.fit_loop.max_epochs = max(e + 2, int(round(e / max(f, 1e-9))))
        groups = [g for opt in trainer.optimizers for g in opt.param_groups]
        for g, lr0 in zip(groups, self.base):
            g["lr"] = self.eta_min + (lr0 - self.eta_min) * (1 + math.cos(math.pi * f)) / 2


def hms(seconds: float) -> str:
    """``DD:HH:MM:SS`` (trainer.max_time's string form)."""
    s = int(round(seconds))
    return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run_variant(v: str, a: argparse.Namespace) -> dict:
    out = Path(a.out).resolve() / v
    seconds = a.minutes * 60
    overrides = [
        f"experiment=fuhl_{v}", "data=afw_helen", f"data.data_dir={DATA.resolve()}", f"data.image_size={a.size}",
        f"data.batch_size={a.batch}", f"data.num_workers={a.workers}", f"data.train_fraction={a.train_fraction}",
        "logger=csv", f"paths.output_dir={out}", "trainer.max_epochs=100000", "trainer.enable_progress_bar=false",
        f"++trainer.max_time={hms(seconds)}", "~model.scheduler",  # TimeBudget runs the cosine
        f"+callbacks.time_budget._target_={__name__ if __name__ != '__main__' else 'fuhl_presets'}.TimeBudget",
        f"+callbacks.time_budget.seconds={seconds}", f"seed={a.seed}",
    ]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    t = time.time()
    res = train(cfg)
    wall = time.time() - t
    m = {k.removeprefix("test/"): float(val) for k, val in res["test_metrics"].items()}
    trainer = res["trainer"]
    m.update(wall_s=wall, epochs=trainer.current_epoch, steps=trainer.global_step,
             train_faces=res["datamodule"].info.sizes.get("train"), test_faces=res["datamodule"].info.sizes.get("test"),
             augment=str(cfg.augment._target_).rsplit(".", 1)[-1])
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-time budget per variant (trainer.max_time)")
    ap.add_argument("--variants", default="non,nobb,bbo,bb")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-fraction", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "outputs" / "bench_fuhl_presets"))
    a = ap.parse_args()
    if not (DATA / "afw_68").is_dir():
        raise SystemExit(f"{DATA / 'afw_68'} is absent: this benchmark needs the real faces of ../shared/data")
    torch.set_num_threads(a.threads)
    results = {}
    for v in a.variants.split(","):
        load0 = os.getloadavg()[0]
        results[v] = run_variant(v, a)
        results[v]["load_avg"] = (load0 + os.getloadavg()[0]) / 2
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "results.json").write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
        print(f"[bench] {v}: {json.dumps(results[v])}", flush=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, torch {torch.__version__}, "
          f"{a.threads} threads, nice {os.nice(0)}; afw_68 + helen_train_68 (train fraction {a.train_fraction}), "
          f"{a.size}px gray, batch {a.batch}, {a.workers} workers, presets' augmentation, {a.minutes:g} min wall per "
          f"variant (trainer.max_time), stages and cosine lr over the budget (TimeBudget); {time.strftime('%F %T')}")
    print("| variant | test NME | FR@0.08 | AUC@0.08 | discard 30% val / random | Spearman | epochs | steps | "
          "wall (min) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    nan = float("nan")
    for v, m in results.items():
        print(f"| {v.upper()} | {m.get('nme', nan):.4f} | {m.get('fr@0.08', nan):.3f} | {m.get('auc@0.08', nan):.3f} | "
              f"{m.get('nme_discard30_val', nan):.4f} / {m.get('nme_discard30_random', nan):.4f} | "
              f"{m.get('spearman', nan):.3f} | {m['epochs']} | {m['steps']} | {m['wall_s'] / 60:.1f} | "
              f"{m['load_avg']:.1f} |")


if __name__ == "__main__":
    main()
