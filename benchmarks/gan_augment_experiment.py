"""Seed 004 (Cheng et al.) Table 1 on what is here: a landmark model on afw_helen at 64 px trained on
(a) real faces only, (b) real + photometric augmentation (control), (c) real + GAN edits unfiltered,
(d) real + GAN edits kept by the landmark-disagreement filter, and the control (e) real + GAN reconstructions
without any edit (alpha 0: is it the edit or the GAN re-rendering?) — same number of optimizer steps, several seeds;
test NME (inter-ocular) on the held-out split. Configs: configs/experiment/cheng_gan_augment*.yaml.

Each run is ``zoo.run.train`` on the composed config (as ``python train.py experiment=...``); results are appended
to a JSON-lines file so variants can run at different times (``--variants``) and the table be printed from all
of them (``--table``). The GAN cache (inversions + edit banks) is built once before the GAN runs and timed apart.

    python benchmarks/gan_augment_experiment.py --variants real photometric --seeds 0 1 --steps 800
    python benchmarks/gan_augment_experiment.py --variants unfiltered filtered --seeds 0 1 --steps 800
    python benchmarks/gan_augment_experiment.py --table
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"real": "cheng_gan_augment_real", "photometric": "cheng_gan_augment_photometric",
            "unfiltered": "cheng_gan_augment_unfiltered", "filtered": "cheng_gan_augment",
            "reconstruction": "cheng_gan_augment_unfiltered"}
# extra overrides of a variant: (e) is (c) with alpha = 0, i.e. the GAN re-rendering without any edit
VARIANT_OVERRIDES = {"reconstruction": ["data.alpha=[0.0,0.0]"]}
LABELS = {"real": "(a) real only", "photometric": "(b) real + photometric aug.",
          "unfiltered": "(c) real + GAN edits, unfiltered", "filtered": "(d) real + GAN edits, filtered",
          "reconstruction": "(e) control: real + GAN reconstructions (alpha 0)"}


def compose(variant: str, seed: int, steps: int, out: Path, extra: list[str]):
    from hydra import compose as hcompose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return hcompose("train", overrides=[f"experiment={VARIANTS[variant]}", *VARIANT_OVERRIDES.get(variant, []),
                                            f"seed={seed}",
                                            f"trainer.max_steps={steps}", "logger=csv", f"paths.output_dir={out}",
                                            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                                            *extra])


def prepare(variant: str, extra: list[str], results: Path) -> None:
    """Build the GAN cache of a variant (inversion + edits), timed, before its training runs."""
    from hydra.utils import instantiate

    cfg = compose(variant, 0, 1, Path("/tmp/gan_prepare"), extra)
    t = time.perf_counter()
    dm = instantiate(cfg.data)
    dm.setup("fit")
    rep = {k: v for k, v in dm.report.items() if k != "preview"}
    rec = {"kind": "prepare", "variant": variant, "seconds": time.perf_counter() - t, "load": os.getloadavg()[0],
           "n_real": dm.datasets["train"].n_real, "n_gan": dm.datasets["train"].n_gan, "report": rep}
    print(json.dumps(rec, default=str), flush=True)
    with open(results, "a") as f:
        f.write(json.dumps(rec, default=str) + "\n")


def run(variant: str, seed: int, steps: int, extra: list[str], results: Path) -> None:
    from zoo.run import train

    out = REPO / "outputs" / "cheng_gan_augment" / f"{variant}_s{seed}"
    cfg = compose(variant, seed, steps, out, extra)
    t = time.perf_counter()
    res = train(cfg)
    wall = time.perf_counter() - t
    ds = res["datamodule"].datasets["train"]
    rec = {"kind": "run", "variant": variant, "seed": seed, "steps": steps, "wall_s": wall,
           "load": os.getloadavg()[0], "test_nme": float(res["test_metrics"].get("test/nme", float("nan"))),
           "n_real": getattr(ds, "n_real", len(ds)), "n_gan": getattr(ds, "n_gan", 0), "extra": extra}
    print(json.dumps(rec), flush=True)
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")


def table(results: Path) -> str:
    recs = [json.loads(l) for l in results.read_text().splitlines() if l.strip()] if results.is_file() else []
    lines = ["| variant | train samples (real + GAN) | seeds | test NME (mean ± sd) | per seed | wall s / run |",
             "|---|---|---|---|---|---|"]
    for v in VARIANTS:
        runs = [r for r in recs if r["kind"] == "run" and r["variant"] == v]
        if not runs:
            continue
        nme = np.array([r["test_nme"] for r in runs])
        lines.append(f"| {LABELS[v]} | {runs[0]['n_real']} + {runs[0]['n_gan']} | {len(runs)} | "
                     f"{nme.mean():.4f} ± {nme.std(ddof=1) if len(nme) > 1 else 0:.4f} | "
                     f"{', '.join(f'{x:.4f}' for x in nme)} | {np.mean([r['wall_s'] for r in runs]):.0f} |")
    for r in recs:
        if r["kind"] == "prepare":
            lines.append(f"\nGAN cache for {r['variant']}: {r['seconds']:.0f} s (load {r['load']:.1f}); "
                         f"{r['report']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--results", type=Path, default=REPO / "outputs" / "cheng_gan_augment" / "results.jsonl")
    ap.add_argument("--table", action="store_true", help="only print the table of the results file")
    ap.add_argument("overrides", nargs="*", help="extra config overrides (key=value) for every run")
    a = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    a.results.parent.mkdir(parents=True, exist_ok=True)
    if not a.table:
        for v in a.variants:
            if v in ("unfiltered", "filtered", "reconstruction"):
                prepare(v, a.overrides, a.results)
            for s in a.seeds:
                run(v, s, a.steps, a.overrides, a.results)
    print(table(a.results))


if __name__ == "__main__":
    main()
