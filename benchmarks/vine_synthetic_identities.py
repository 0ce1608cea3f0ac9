"""Seed 003 (Vine) end to end on what is here, each stage timed and logged to ``<work>/results.json``:

1. recognisers: a zoo FaceNet (nn4small, triplet, P×K) and a zoo ArcFace (resnet10t) on ytf_identities (64 px);
2. the identity GAN (``model=identity_gan``, FaceNet as identity encoder) on the ytf training identities;
3. the synthetic sets (``data=gan_identities``: Reconstructed / New Faces / New Identities, dlib no-face filter);
4. data-set properties (Tables 1-2): matching / non-matching distance statistics and EER of 3000 + 3000 pairs per
   set for FaceNet, ArcFace and dlib, histograms in ``<work>/properties_histograms.png``;
5. the experiment (Tables 3/5): ArcFace on real / real + New Faces / real + New Identities / New Identities
   alone, 10-fold accuracy and EER on the held-out real test identities, with wall times.

Every stage takes its budget from the command line (defaults: a tiny CPU run, minutes at nice 19; the figures it
gives are a smoke run, not the paper's numbers). Stages whose output exists are skipped (``--fresh`` redoes all).

    python benchmarks/vine_synthetic_identities.py --work data_out/vine --gan-batches 300 --arc-epochs 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"real": "vine_synthetic_identities_real", "real + New Faces": "vine_synthetic_identities_new_faces",
            "real + New Identities": "vine_synthetic_identities",
            "New Identities alone": "vine_synthetic_identities_new_identities_only"}


def train(args: list[str], out: Path) -> tuple[dict, float]:
    """``zoo.run.train`` on the composed config (what train.py does); (result, wall seconds)."""
    from hydra import compose, initialize_config_dir

    from zoo.run import train as run

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=args + [f"paths.output_dir={out}", "logger=csv",
                                                 "trainer.enable_progress_bar=false",
                                                 "trainer.enable_model_summary=false"])
    t = time.perf_counter()
    res = run(cfg)
    return res, time.perf_counter() - t


def ytf(size: int) -> list[str]:
    return ["data=ytf_identities", f"data.image_size={size}", "data.num_workers=0"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="data_out/vine")
    p.add_argument("--rec-epochs", type=int, default=3)
    p.add_argument("--rec-batches", type=int, default=20)
    p.add_argument("--gan-epochs", type=int, default=1)
    p.add_argument("--gan-batches", type=int, default=200)
    p.add_argument("--new-identities", type=int, default=40)
    p.add_argument("--search-images", type=int, default=20, help="images per new identity in the search (paper 200)")
    p.add_argument("--max-attempts", type=int, default=400)
    p.add_argument("--gen-fraction", type=float, default=1.0,
                   help="generate the sets from this fraction of each training identity's images (base train_fraction)")
    p.add_argument("--pairs", type=int, default=3000)
    p.add_argument("--max-images", type=int, default=1200, help="images per set for the properties")
    p.add_argument("--arc-epochs", type=int, default=2)
    p.add_argument("--arc-batches", type=int, default=20)
    p.add_argument("--stages", nargs="*", default=["rec", "gan", "sets", "properties", "experiment"])
    p.add_argument("--fresh", action="store_true")
    a = p.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rfile = work / "results.json"
    results = json.loads(rfile.read_text()) if rfile.is_file() and not a.fresh else {}

    def save() -> None:
        rfile.write_text(json.dumps(results, indent=1, default=str))

    load = lambda: os.getloadavg()[0]  # noqa: E731
    if "rec" in a.stages and ("facenet" not in results or a.fresh):
        for name, model in (("facenet", ["model=facenet_triplet"]),
                            ("arcface", ["model=arcface", "model.backbone=resnet10t"])):
            res, sec = train(model + ytf(64) + ["sampler=pk", "sampler.k=6", f"trainer.max_epochs={a.rec_epochs}",
                                                f"trainer.limit_train_batches={a.rec_batches}"], work / name)
            results[name] = {"ckpt": res["best_model_path"], "seconds": sec, "load": load(),
                             "test": {k: float(v) for k, v in (res.get("test_metrics") or {}).items()
                                      if k in ("test/accuracy", "test/eer")}}
            save()
    if "gan" in a.stages and ("identity_gan" not in results or a.fresh):
        res, sec = train(["model=identity_gan", f"model.identity_ckpt={results['facenet']['ckpt']}"] + ytf(64)
                         + ["data.batch_size=8", f"trainer.max_epochs={a.gan_epochs}",
                            f"trainer.limit_train_batches={a.gan_batches}", "trainer.limit_val_batches=5"],
                         work / "identity_gan")
        steps = a.gan_epochs * a.gan_batches
        results["identity_gan"] = {"ckpt": res["best_model_path"], "seconds": sec, "load": load(),
                                   "train_img_per_s": steps * 8 / sec,
                                   "test": {k: float(v) for k, v in (res.get("test_metrics") or {}).items()}}
        save()
    sets_dir = work / "sets"
    if "sets" in a.stages and ("sets" not in results or a.fresh):
        t = time.perf_counter()
        cmd = [sys.executable, str(REPO / "generate.py"), "data=gan_identities",
               f"data.synthesis_ckpt={results['identity_gan']['ckpt']}", f"out_dir={sets_dir}",
               f"data.new_identities={a.new_identities}", f"data.images_per_identity={a.search_images}",
               f"data.max_attempts={a.max_attempts}", f"hydra.run.dir={work / 'generate'}"]
        if a.gen_fraction < 1:
            cmd.append(f"+data.base_overrides.train_fraction={a.gen_fraction}")
        subprocess.run(cmd, check=True, cwd=REPO)
        man = json.loads((sets_dir / "manifest.json").read_text())
        gen = sum(s["generated"] for s in man["sets"].values())
        gen_s = sum(s["seconds"] for s in man["sets"].values())
        results["sets"] = {"manifest": man, "seconds": time.perf_counter() - t, "load": load(),
                           "generation_img_per_s_with_filter": gen / max(gen_s, 1e-9)}
        save()
    if "properties" in a.stages:
        import numpy as np

        from zoo.datamodules.gan_identities import GanIdentitiesDataModule
        from zoo.gan.detectors import dlib_available
        from zoo.workflows.identity_properties import (dlib_recogniser, histogram_figure, properties,
                                                       read_identity_folders, table, zoo_recogniser)

        dm = GanIdentitiesDataModule(base="ytf_identities", base_overrides={"num_workers": 0}, sets=[])
        x, labels, _ = dm.real_training_images(64)
        orig = ((x.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        rng = np.random.default_rng(0)
        keep = np.sort(rng.permutation(len(orig))[:a.max_images])
        sets = {"Original": (orig[keep], labels[keep])}
        for s, title in (("reconstructed", "Reconstructed"), ("new_faces", "New Faces"),
                         ("new_identities", "New Identities")):
            if (sets_dir / s).is_dir():
                sets[title] = read_identity_folders(sets_dir / s, a.max_images)
        recs = {"FaceNet (zoo)": zoo_recogniser(results["facenet"]["ckpt"]),
                "ArcFace (zoo)": zoo_recogniser(results["arcface"]["ckpt"])}
        if dlib_available():
            recs["dlib"] = dlib_recogniser()
        t = time.perf_counter()
        rows, dists = properties(sets, recs, a.pairs)
        histogram_figure(dists).savefig(work / "properties_histograms.png", dpi=110)
        results["properties"] = {"rows": rows, "table": table(rows), "seconds": time.perf_counter() - t,
                                 "load": load(), "dlib_no_face": getattr(recs.get("dlib"), "no_face", None)}
        save()
        print(results["properties"]["table"])
    if "experiment" in a.stages:
        rows = results.setdefault("experiment", {})
        for label, exp in VARIANTS.items():
            if label in rows and not a.fresh:
                continue
            try:
                res, sec = train([f"experiment={exp}", f"data.sets_dir={sets_dir}", "model.backbone=resnet10t",
                                  "+data.base_overrides={image_size: 64, num_workers: 0}", "data.num_workers=0",
                                  f"trainer.max_epochs={a.arc_epochs}", f"trainer.limit_train_batches={a.arc_batches}"],
                                 work / "experiment" / exp)
                tm = res.get("test_metrics") or {}
                rows[label] = {"accuracy": float(tm.get("test/accuracy", float("nan"))),
                               "eer": float(tm.get("test/eer", float("nan"))), "seconds": sec, "load": load(),
                               "train_images": res["datamodule"].info.sizes.get("train"),
                               "identities": res["datamodule"].info.num_identities}
            except Exception as e:  # noqa: BLE001 - report the failed variant, run the others
                rows[label] = {"error": f"{type(e).__name__}: {e}"[:500]}
            save()
        print("| training set | train images / identities | 10-fold accuracy % | EER % | wall s (load) |")
        print("|---|---|---|---|---|")
        for label, r in rows.items():
            if "error" in r:
                print(f"| {label} | failed: {r['error'][:80]} | | | |")
            else:
                print(f"| {label} | {r['train_images']} / {r['identities']} | {100 * r['accuracy']:.1f} | "
                      f"{100 * r['eer']:.1f} | {r['seconds']:.0f} ({r['load']:.1f}) |")


if __name__ == "__main__":
    main()
