"""Landmarks on whole photos: detector -> box-to-crop map -> landmark model -> JSON + overlay PNG.

    python predict.py image=photo.jpg [ckpt_path=<ckpt>] [detector=dlib|dlib_cnn|opencv] [out_dir=<folder>]

    from zoo.models.inference import LandmarkPredictor
    pred = LandmarkPredictor.from_checkpoint("outputs/.../checkpoints/best-epoch029.ckpt", backend="auto")
    photo = pred.predict_image("photo.jpg")            # PhotoFaces
    photo.landmarks, photo.validation, photo.boxes      # [K, L, 2], [K, L], [K, 4] in the photo's pixels

A landmark model only knows the crop it was trained on: ``crop_scale`` × the landmark bounding box (300-W
folders). On a photo, a face detector (:mod:`zoo.detection`) gives a box framed its own way; the box-to-crop map
(:class:`zoo.detection.BoxToCrop`, least squares on the training faces) turns it into the crop square the model
expects. The map is stored as ``box_to_crop.<detector>.<settings hash>.json`` beside the checkpoint, fitted the
first time on the *training* split of the run's data config (or ``data=`` given to predict.py): never on the
test faces. ``refine`` (default 1) then re-crops each face from the first pass's landmarks (the training crop of
its predicted landmark box) and predicts again, which removes much of the map's error that a box cannot explain. :func:`zoo.models.photo_runs.detector_report` is ``evaluate.py boxes=detector``: NME with detector boxes beside NME with
landmark boxes on the same faces, and how many faces the detector missed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from zoo.checks import check_number, invalid
from zoo.datamodules.crop import face_square
from zoo.detection import BoxToCrop, detector_settings, fit_coef, landmark_box, load_face_detector, match_face
from zoo.io.images import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)

BOXES = ("landmarks", "detector")


# ---- the box-to-crop map beside a checkpoint ------------------------------------------------------------------
def mapping_path(ckpt_path: str | os.PathLike, detector: Any, crop_scale: float) -> Path:
    """``<checkpoint folder>/box_to_crop.<detector name>.<hash of its settings and crop_scale>.json``."""
    settings = detector_settings(detector)
    digest = hashlib.sha1(json.dumps([settings, round(float(crop_scale), 6)], sort_keys=True).encode()).hexdigest()[:8]
    return Path(ckpt_path).resolve().parent / f"box_to_crop.{settings.get('name', 'detector')}.{digest}.json"


def training_records(data_cfg: Mapping[str, Any], what: str = "data") -> list[Any]:
    """Annotation records of the training split of a landmark data config (whole photos + landmarks)."""
    from hydra.utils import instantiate

    cfg = {k: v for k, v in dict(data_cfg).items() if k != "sampler"}
    cfg["augment"] = None
    dm = instantiate(cfg, _convert_="all")
    dm.setup(None)
    return split_records(dm, "train", f"{what}: {cfg.get('_target_')} has no annotated whole photos to learn the "
                         f"box-to-crop map from", "or pass box_mapping=<json>")


def split_records(dm: Any, split: str, problem: str, alternative: str = "") -> list:
    """The landmark records (whole photo + landmarks) of ``dm``'s ``split``; ValueError with ``problem`` when the
    split has none (identity data, synthetic faces rendered on the fly)."""
    records = getattr((getattr(dm, "datasets", None) or {}).get(split), "records", None)
    if not records:
        raise ValueError(f"{problem}; expected a landmark data config of photos with landmarks (data=afw_helen, "
                         f"300w, wflw, keypoint_csv, pts folders){', ' + alternative if alternative else ''}")
    return list(records)


def fit_box_to_crop(records: Iterable[Any], detector: Any, crop_scale: float, max_faces: int | None = 2000,
                    seed: int = 0, min_iou: float = 0.25, progress: Callable[[int, int], None] | None = None
                    ) -> BoxToCrop:
    """Fit the map on annotated photos: ``records`` with ``image`` (path) and ``landmarks`` [L, 2] in that image's
    pixels (zoo.io.records.LandmarkRecord; the training split). The detector runs on each whole photo; faces it
    misses (:func:`match_face`) are counted in ``stats`` and left out. ``max_faces``: a seeded subset when more."""
    crop_scale = check_number("crop_scale", crop_scale, low=0.0)
    recs = list(records)
    if max_faces is not None and len(recs) > max_faces:
        keep = np.sort(np.random.default_rng(seed).choice(len(recs), max_faces, replace=False))
        recs = [recs[i] for i in keep]
    det = load_face_detector(detector)
    boxes, squares, missed, cache = [], [], [], {}
    for i, r in enumerate(recs):
        key = str(r.image)
        if key not in cache:  # photos with several annotated faces are detected once
            cache = {key: det(read_image(r.image))}
        found, _ = cache[key]
        j = match_face(found, r.landmarks, min_iou)
        if j < 0:
            missed.append(getattr(r, "key", key))
        else:
            boxes.append(found[j])
            squares.append(face_square(r.landmarks, None, crop_scale))
        if progress is not None:
            progress(i + 1, len(recs))
    if not boxes:
        raise ValueError(f"box-to-crop map: the detector found none of the {len(recs)} training faces "
                         f"(first: {missed[:3]}); expected photos with faces it can detect")
    coef, res = fit_coef(np.stack(boxes), np.asarray(squares))
    stats = {"faces": len(recs), "detected": len(boxes), "missed": len(missed), "missed_examples": missed[:10],
             "residual_rms_normalised": np.sqrt((res ** 2).mean(axis=0)).round(5).tolist(), "min_iou": min_iou}
    return BoxToCrop(coef, float(crop_scale), detector_settings(det), stats)


def resolve_box_mapping(predictor: Any, detector: Any, box_mapping: Any = None, data: Mapping[str, Any] | None = None,
                        max_faces: int | None = 2000) -> BoxToCrop:
    """The map for ``predictor`` and ``detector``: ``box_mapping`` (a BoxToCrop or a JSON path) when given; else the
    JSON beside the predictor's checkpoint; else fitted on the training split of ``data`` (default: the run's
    saved data config) and saved there (or only used, with a warning, when that folder is read-only)."""
    if isinstance(box_mapping, BoxToCrop):
        mapping = box_mapping
    elif box_mapping is not None:
        mapping = BoxToCrop.load(box_mapping)
    else:
        if not predictor.ckpt_path:
            raise ValueError("box_mapping: needed when the predictor was not loaded with from_checkpoint (there is no "
                             "run to learn it from); pass a BoxToCrop or the JSON written beside a checkpoint")
        path = mapping_path(predictor.ckpt_path, detector, predictor.crop_scale)
        if path.is_file():
            mapping = BoxToCrop.load(path)
        else:
            data_cfg = data if data is not None else (predictor.run_config or {}).get("data")
            if not data_cfg:
                raise ValueError(f"ckpt_path: {predictor.ckpt_path} stores no data config to learn the box-to-crop map "
                                 f"from; pass data=<landmark data config> or box_mapping=<json>")
            records = training_records(data_cfg)
            print(f"[zoo] learning the box-to-crop map for detector {detector_settings(detector)} on "
                  f"{min(len(records), max_faces or len(records))} training faces ...", flush=True)
            mapping = fit_box_to_crop(records, detector, predictor.crop_scale, max_faces=max_faces)
            try:
                mapping.save(path)
                print(f"[zoo] box-to-crop map: {path} ({mapping.stats['detected']} of {mapping.stats['faces']} "
                      f"faces detected)")
            except OSError as e:
                log.warning("box-to-crop map not saved to %s (%s); it is refitted next time", path, e)
    mapping.check_compatible(detector, predictor.crop_scale)
    return mapping


# ---- one photo ------------------------------------------------------------------------------------------------
@dataclass
class PhotoFaces:
    """The faces of one photo, all in its 0-based pixel-centre coordinates. ``boxes`` [K, 4] detector boxes
    (x0, y0, x1, y1), ``scores`` [K], ``crop_boxes`` [K, 4] the squares the model saw, ``landmarks`` [K, L, 2],
    ``validation`` [K, L] (predicted error of each landmark in pixels; None without the validation head)."""

    image: str | None
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    crop_boxes: np.ndarray
    landmarks: np.ndarray
    validation: np.ndarray | None
    warning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.boxes)

    def to_json(self) -> dict[str, Any]:
        r = lambda a: np.round(np.asarray(a, np.float64), 3).tolist()  # noqa: E731
        faces = []
        for k in range(len(self)):
            face = {"box": r(self.boxes[k]), "score": round(float(self.scores[k]), 4), "crop_box": r(self.crop_boxes[k]),
                    "landmarks": r(self.landmarks[k])}
            if self.validation is not None:
                face["validation"] = r(self.validation[k])
            faces.append(face)
        return {"image": self.image, "width": self.width, "height": self.height, "faces": faces,
                "warning": self.warning, **self.extra}


def _load(image: Any) -> tuple[np.ndarray, str | None]:
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        if not p.is_file():
            raise ValueError(f"image={str(image)!r} is invalid: {p} does not exist or is not a file; expected a photo "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        return read_image(p), str(p)
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise invalid("image", f"{a.dtype} array {a.shape}", "not a photo", "a path or a uint8 [H, W] / [H, W, 3] RGB array")
    return a, None


def landmarks_from_boxes(predictor: Any, image: np.ndarray, boxes: np.ndarray, mapping: BoxToCrop, refine: int = 1
                         ) -> tuple[Any, np.ndarray]:
    """(LandmarkPrediction, crop squares [K, 4] of the last pass) for detector ``boxes`` on ``image``: the first pass
    crops the square the box-to-crop map gives; each of ``refine`` further passes crops the training square of the
    previous pass's landmarks (``crop_scale`` × their bounding box, exactly the training crop), which removes much of
    the map's error (pose, framing) that a box cannot explain."""
    from zoo.datamodules.crop import face_square

    if predictor.channels == 1 and image.ndim == 3:  # convert once, not once per face and pass
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    face_boxes = mapping.face_boxes(boxes)
    out = predictor.predict([image] * len(boxes), boxes=face_boxes)
    for _ in range(int(refine)):
        face_boxes = np.stack([landmark_box(lm) for lm in out.landmarks])
        out = predictor.predict([image] * len(boxes), boxes=face_boxes)
    sq = np.array([face_square(None, b, predictor.crop_scale) for b in face_boxes], np.float64).reshape(-1, 3)
    return out, np.concatenate([sq[:, :2] - sq[:, 2:] / 2, sq[:, :2] + sq[:, 2:] / 2], axis=1)


class PhotoLandmarker:
    """Detector + box-to-crop map + :class:`~zoo.models.inference.LandmarkPredictor` (module doc)."""

    def __init__(self, predictor: Any, detector: Any = "dlib", box_mapping: Any = None,
                 data: Mapping[str, Any] | None = None, refine: int = 1, **detector_options: Any) -> None:
        from zoo.checks import check_int

        self.predictor = predictor
        self.refine = check_int("refine", refine, low=0, high=10)
        self.detector = load_face_detector(detector, **detector_options)
        self.mapping = resolve_box_mapping(predictor, self.detector, box_mapping, data)

    def __call__(self, image: Any, name: str | None = None) -> PhotoFaces:
        """The faces of ``image`` (a path, or a uint8 array whose file ``name`` is reported when given)."""
        img, path = _load(image)
        name = path or name
        h, w = img.shape[:2]
        boxes, scores = self.detector(img)
        L = self.predictor.model.hparams.get("num_landmarks", 0) if hasattr(self.predictor.model, "hparams") else 0
        if not len(boxes):
            det = detector_settings(self.detector).get("name")
            warning = f"{name or 'image'}: detector {det!r} found no face"
            log.warning(warning)
            empty = np.zeros((0, 4), np.float32)
            return PhotoFaces(name, w, h, empty, np.zeros(0, np.float32), empty, np.zeros((0, L, 2), np.float32),
                              None, warning)
        out, squares = landmarks_from_boxes(self.predictor, img, boxes, self.mapping, self.refine)
        return PhotoFaces(name, w, h, boxes, scores, squares.astype(np.float32), out.landmarks, out.validation)


# ---- overlay --------------------------------------------------------------------------------------------------
def overlay(image: np.ndarray, faces: PhotoFaces, scheme: str | None = None, max_error: float = 0.1) -> np.ndarray:
    """RGB uint8 copy of ``image`` with each face's detector box (blue), crop square (grey) and landmarks coloured
    by the validation signal as a fraction of the face's predicted inter-ocular distance: green 0 -> red
    ``max_error`` and above (white without the validation head)."""
    from zoo.schemes import get_scheme

    img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    img = np.ascontiguousarray(img.copy())
    eyes = None
    if scheme:
        try:
            eyes = get_scheme(scheme).outer_eye_corners
        except ValueError:
            eyes = None
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    q = lambda pts: np.round((np.asarray(pts) + 0.5) * (1 << shift) - 0.5).astype(np.int32)  # noqa: E731
    for k in range(len(faces)):
        side = float(faces.crop_boxes[k, 2] - faces.crop_boxes[k, 0])
        t = max(1, int(round(side / 200)))
        for box, colour in ((faces.crop_boxes[k], (160, 160, 160)), (faces.boxes[k], (40, 110, 255))):
            a, b = q(box[:2]), q(box[2:])
            cv2.rectangle(img, tuple(int(v) for v in a), tuple(int(v) for v in b), colour, t, cv2.LINE_AA, shift)
        lm = faces.landmarks[k]
        iod = float(np.linalg.norm(lm[eyes[0]] - lm[eyes[1]])) if eyes is not None else side / 2.5
        for j, p in enumerate(q(lm)):
            if faces.validation is None:
                colour = (255, 255, 255)
            else:
                u = float(np.clip(faces.validation[k, j] / max(iod, 1e-6) / max_error, 0, 1))
                colour = (int(255 * min(1, 2 * u)), int(255 * min(1, 2 * (1 - u))), 0)
            cv2.circle(img, (int(p[0]), int(p[1])), max(1, t) << shift, colour, -1, cv2.LINE_AA, shift)
    return img


# ---- predict.py -----------------------------------------------------------------------------------------------
def list_images(image: Any) -> list[Path]:
    """``image``: a photo, a folder (its photos, sorted) or a list of either; ValueError naming a path that does
    not exist, or a folder without photos."""
    items = list(image) if isinstance(image, (list, tuple)) or type(image).__name__ == "ListConfig" else [image]
    if not items:
        raise invalid("image", image, "empty list", "a photo, a folder of photos or a list of photos")
    out: list[Path] = []
    for it in items:
        if not isinstance(it, (str, os.PathLike)) or not str(it):
            raise invalid("image", it, "not a path", "a photo, a folder of photos or a list of photos")
        p = Path(it).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise invalid("image", str(it), f"folder {p} holds no photos", f"files ending in {', '.join(IMAGE_SUFFIXES)}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise invalid("image", str(it), f"{p} does not exist", "a photo, a folder of photos or a list of photos")
    return out


def predict_photos(predictor: Any, images: Sequence[Any], out_dir: str | os.PathLike, detector: Any = "dlib",
                   box_mapping: Any = None, data: Mapping[str, Any] | None = None, write_overlay: bool = True,
                   refine: int = 1, **detector_options: Any) -> dict[str, Any]:
    """Run :class:`PhotoLandmarker` on every photo, write ``landmarks.json`` (all photos; a photo without a face has
    ``faces: []`` and a ``warning``) and ``<name>_landmarks.png`` overlays into ``out_dir``; return the JSON dict."""
    from zoo.checkpoint import class_path

    paths = list_images(images)  # every path checked before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runner = PhotoLandmarker(predictor, detector, box_mapping, data, refine, **detector_options)
    hp = getattr(predictor.model, "hparams", {}) or {}
    scheme = hp.get("scheme")
    entries, used = [], set()
    for p in paths:
        img = read_image(p)
        faces = runner(img, str(p))
        entry = faces.to_json()
        if write_overlay:
            name = f"{p.stem}_landmarks.png"
            i = 1
            while name in used:
                i += 1
                name = f"{p.stem}_{i}_landmarks.png"
            used.add(name)
            cv2.imwrite(str(out / name), cv2.cvtColor(overlay(img, faces, scheme), cv2.COLOR_RGB2BGR))
            entry["overlay"] = name
        if faces.warning:
            print(f"[zoo] WARNING {faces.warning}")
        entries.append(entry)
    report = {
        "checkpoint": predictor.ckpt_path, "model_class": class_path(type(predictor.model)), "scheme": scheme,
        "backend": predictor.backend, "detector": detector_settings(runner.detector),
        "box_mapping": runner.mapping.to_dict(), "refine": runner.refine,
        "coordinates": "pixels of each photo, 0-based, pixel centres (pixel j covers [j - 0.5, j + 0.5])",
        "validation": "predicted error of each landmark in photo pixels (seed 002's validation signal); higher = "
                      "less reliable",
        "num_images": len(entries), "num_faces": sum(len(e["faces"]) for e in entries),
        "images_without_faces": [e["image"] for e in entries if not e["faces"]],
        "images": entries,
    }
    (out / "landmarks.json").write_text(json.dumps(report, indent=1))
    return report
