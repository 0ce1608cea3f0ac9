"""The entry-point side of photos: ``predict.py`` (:func:`run_predict`) and ``evaluate.py boxes=detector``
(:func:`detector_report`), on top of :mod:`zoo.models.photos` and :class:`~zoo.models.inference.LandmarkPredictor`
(kept apart from :mod:`zoo.models.photos`, which ``LandmarkPredictor.predict_image`` imports: no import cycle)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.checks import check_choice, invalid
from zoo.datamodules.crop import protocol_norm
from zoo.detection import detector_settings, landmark_box, match_face
from zoo.io.images import read_image
from zoo.models.photos import PhotoLandmarker, landmarks_from_boxes, list_images, predict_photos, split_records


def find_landmark_checkpoint(roots: Sequence[Path]) -> Path:
    """The newest checkpoint (best-*.ckpt before last.ckpt) of a landmark run under ``roots`` (run folders written
    by train.py: ``<run>/checkpoints/config.yaml`` names the model class)."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    found: list[tuple[float, Path]] = []
    for root in roots:
        if not root.is_dir():
            continue
        for cfg_file in root.glob("**/checkpoints/config.yaml"):
            try:
                target = OmegaConf.load(cfg_file).model._target_
                if getattr(get_class(target), "task", None) != "landmarks":
                    continue
            except Exception:  # noqa: BLE001 - unreadable or foreign config: not a candidate
                continue
            ckpts = sorted(cfg_file.parent.glob("best-*.ckpt")) or sorted(cfg_file.parent.glob("last.ckpt"))
            found += [(c.stat().st_mtime, c) for c in ckpts]
    if not found:
        raise ValueError(f"ckpt_path=None is invalid: no landmark checkpoint under {[str(r) for r in roots]}; "
                         f"expected ckpt_path=<.ckpt written by train.py> (train one with `python train.py "
                         f"data=afw_helen`)")
    return max(found)[1]


def run_predict(cfg: Any) -> dict[str, Any]:
    """predict.py: the composed config (configs/predict.yaml) -> :func:`predict_photos`; paths and names are checked
    before the checkpoint is loaded."""
    from omegaconf import OmegaConf

    from zoo.datamodules.landmark_folders import REPO_ROOT
    from zoo.detection import FACE_DETECTORS
    from zoo.models.inference import BACKENDS, LandmarkPredictor

    if cfg.get("image") in (None, "", "???"):
        raise invalid("image", cfg.get("image"), "missing", "image=<photo>, a folder of photos or a list [a.jpg, b.png]")
    paths = list_images(cfg.image)
    detector = check_choice("detector", cfg.get("detector", "dlib"), sorted(FACE_DETECTORS))
    check_choice("backend", cfg.get("backend", "auto"), BACKENDS)
    options = OmegaConf.to_container(cfg.detector_options, resolve=True) if cfg.get("detector_options") else {}
    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        ckpt = find_landmark_checkpoint([Path.cwd() / "outputs", REPO_ROOT / "outputs"])
        print(f"[zoo] ckpt_path not given: using the newest landmark checkpoint {ckpt}")
    pred = LandmarkPredictor.from_checkpoint(ckpt, device=cfg.get("device", "cpu"), backend=cfg.get("backend", "auto"))
    data = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") is not None else None
    out_dir = Path(cfg.get("out_dir") or cfg.paths.output_dir)
    report = predict_photos(pred, paths, out_dir, detector, cfg.get("box_mapping"), data, bool(cfg.get("overlay", True)),
                            int(cfg.get("refine", 1)), **options)
    print(f"[zoo] {report['num_faces']} face(s) on {report['num_images']} photo(s) -> {out_dir / 'landmarks.json'}"
          + (f"; no face on {len(report['images_without_faces'])}" if report["images_without_faces"] else ""))
    return report


# ---- evaluate.py boxes=detector -------------------------------------------------------------------------------
def detector_report(ckpt_path: str | os.PathLike, dm: Any, out_dir: str | os.PathLike, detector: Any = "dlib",
                    box_mapping: Any = None, refine: int = 1, min_iou: float = 0.25, **detector_options: Any
                    ) -> dict[str, Any]:
    """NME on the test split of ``dm`` with the detector's boxes (through the box-to-crop map learnt on the run's
    *training* data) beside the NME with landmark boxes on the same faces, and the faces the detector missed.

    Writes ``detector.json`` (per face: key, detected, NME with either box) and ``ced_detector.png`` to ``out_dir``,
    adds the scalars to ``metrics.json`` there, and returns them (nested: ``detector``, ``landmark_boxes_detected``,
    ``landmark_boxes``)."""
    from zoo.metrics.landmarks import ced_figure, summarize
    from zoo.models.inference import LandmarkPredictor

    records = split_records(dm, "test", f"boxes=detector: the test split of {type(dm).__name__} has no annotated "
                            f"whole photos (records with an image file and landmarks)")
    ds = dm.datasets["test"]
    pred = LandmarkPredictor.from_checkpoint(ckpt_path, backend="auto")
    runner = PhotoLandmarker(pred, detector, box_mapping, refine=refine, **detector_options)
    scheme, kind = ds.scheme, ds.norm
    n, L = len(records), len(records[0].landmarks)
    err_lm, err_det = np.full((n, L), np.nan), np.full((n, L), np.nan)
    val_lm, val_det = np.full((n, L), np.nan), np.full((n, L), np.nan)
    norm, diag = np.zeros(n), np.zeros(n)
    found = np.zeros(n, bool)
    has_val = False
    for i, r in enumerate(records):
        img = read_image(r.image)
        gt = np.asarray(r.landmarks, np.float64)
        norm[i] = protocol_norm(gt, scheme, kind, r.box)
        lb = landmark_box(gt)
        diag[i] = float(np.hypot(lb[2] - lb[0], lb[3] - lb[1]))
        boxes, _ = runner.detector(img)
        j = match_face(boxes, gt, min_iou)
        out = pred.predict([img], boxes=[r.box if r.box is not None else lb])
        has_val = out.validation is not None
        err_lm[i] = np.linalg.norm(out.landmarks[0].astype(np.float64) - gt, axis=-1)
        val_lm[i] = out.validation[0] if has_val else np.nan
        if j >= 0:
            found[i] = True
            out, _ = landmarks_from_boxes(pred, img, boxes[j:j + 1], runner.mapping, runner.refine)
            err_det[i] = np.linalg.norm(out.landmarks[0].astype(np.float64) - gt, axis=-1)
            val_det[i] = out.validation[0] if has_val else np.nan
    vis = np.ones((n, L), bool)
    keys = np.arange(n)

    def summary(err: np.ndarray, val: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        if not rows.any():
            return {"num_faces": 0.0}
        return summarize(err[rows], vis[rows], norm[rows], diag[rows], val[rows] if has_val else None, keys[rows])

    res = {"detector": {**summary(err_det, val_det, found), "faces": float(n), "detected": float(found.sum()),
                        "missed": float((~found).sum()), "miss_rate": float((~found).mean()),
                        "refine": float(runner.refine)},
           "landmark_boxes_detected": summary(err_lm, val_lm, found),
           "landmark_boxes": summary(err_lm, val_lm, np.ones(n, bool))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nme_lm, nme_det = err_lm.mean(1) / norm, err_det.mean(1) / norm
    faces = [{"key": r.key, "detected": bool(found[i]), "nme_landmark_box": round(float(nme_lm[i]), 6),
              "nme_detector_box": None if not found[i] else round(float(nme_det[i]), 6)} for i, r in enumerate(records)]
    (out / "detector.json").write_text(json.dumps({"detector": detector_settings(runner.detector),
                                                   "box_mapping": runner.mapping.to_dict(), "refine": runner.refine,
                                                   "min_iou": min_iou,
                                                   "faces": faces}, indent=1))
    fig = ced_figure({f"landmark boxes, all {n} faces": nme_lm,
                      f"landmark boxes, {int(found.sum())} detected": nme_lm[found],
                      f"detector boxes, {int(found.sum())} detected": nme_det[found]},
                     title=f"CED: landmark vs {detector_settings(runner.detector)['name']} boxes "
                           f"({int((~found).sum())} of {n} missed)")
    fig.savefig(out / "ced_detector.png", dpi=100)
    from zoo.loggers import flatten_metrics

    flat = flatten_metrics(res)
    metrics_file = out / "metrics.json"
    merged = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    merged.update(flat)
    metrics_file.write_text(json.dumps(merged, indent=1, sort_keys=True))
    return flat
