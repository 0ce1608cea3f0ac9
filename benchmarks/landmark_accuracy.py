"""Accuracy of the paper's four variants (seed 002: NON, NOBB, BBO, BB) on real 300-W faces.

Trains each variant with ``python train.py experiment=fuhl_<v> data=afw_helen ...`` semantics (composed
in-process through Hydra, exactly like train.py) on ../shared/data/afw_68 + helen_train_68, pooled and
split 80/10/10 by photo (seeded; the split of configs/data/afw_helen.yaml), then tests the best checkpoint
on the held-out test split: inter-ocular NME (outer eye corners, 300-W protocol), FR/AUC@0.08 and the
validation-signal discard table (NME after discarding 10/20/30% of each face's landmarks with the highest
validation signal, beside random discarding), Spearman/Pearson between validation signal and error.
Every variant uses the same data, seed, epochs and schedule (L2 -> L1 -> Wing at 0 / 45 / 90% of the
epochs); the baseline within the run is NON. Wall time per variant is printed.

    python benchmarks/landmark_accuracy.py [--epochs 8] [--size 64] [--train-fraction 0.5] [--variants non,nobb,bbo,bb]
        [--refresh-every 0.1] [--threads 2] [--out outputs/bench_accuracy]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from zoo.run import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data"


def run_variant(v: str, a: argparse.Namespace) -> dict:
    out = Path(a.out).resolve() / v
    overrides = [
        f"experiment=fuhl_{v}", "data=afw_helen", f"data.data_dir={DATA.resolve()}", f"data.image_size={a.size}",
        f"data.batch_size={a.batch}", f"data.num_workers={a.workers}", f"data.train_fraction={a.train_fraction}",
        f"augment={a.augment}", "logger=csv", f"paths.output_dir={out}", f"trainer.max_epochs={a.epochs}",
        "trainer.enable_progress_bar=false", "callbacks.visual_logging.every_n_epochs=1000", f"seed={a.seed}",
    ]
    if v == "bb":
        overrides.append(f"sampler.refresh_every={a.refresh_every}")
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    t = time.time()
    res = train(cfg)
    wall = time.time() - t
    m = {k.removeprefix("test/"): float(v) for k, v in res["test_metrics"].items()}
    m["wall_s"] = wall
    m["train_faces"] = res["datamodule"].info.sizes.get("train")
    m["test_faces"] = res["datamodule"].info.sizes.get("test")
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-fraction", type=float, default=0.5)
    ap.add_argument("--augment", default="light")
    ap.add_argument("--variants", default="non,nobb,bbo,bb")
    ap.add_argument("--refresh-every", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "outputs" / "bench_accuracy"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = {}
    for v in a.variants.split(","):
        results[v] = run_variant(v, a)
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "results.json").write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
        print(f"[bench] {v}: {json.dumps(results[v])}", flush=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, torch {torch.__version__}, "
          f"{a.threads} threads; afw_68 + helen_train_68, train fraction {a.train_fraction}, {a.size}px gray, "
          f"batch {a.batch}, {a.epochs} epochs, augment={a.augment}, BB refresh every {a.refresh_every} epoch")
    print("| variant | NME (inter-ocular) | FR@0.08 | AUC@0.08 | discard 10% val / rand | discard 20% val / rand "
          "| discard 30% val / rand | Spearman | wall (min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v, m in results.items():
        def d(p: int) -> str:
            return f"{m.get(f'nme_discard{p}_val', float('nan')):.4f} / {m.get(f'nme_discard{p}_random', float('nan')):.4f}"
        print(f"| {v.upper()} | {m.get('nme', float('nan')):.4f} | {m.get('fr@0.08', float('nan')):.3f} | "
              f"{m.get('auc@0.08', float('nan')):.3f} | {d(10)} | {d(20)} | {d(30)} | "
              f"{m.get('spearman', float('nan')):.3f} | {m['wall_s'] / 60:.1f} |")


if __name__ == "__main__":
    main()
