"""Face boxes on whole photos, and the learnt map from a detector's box to the crop a landmark model was trained on.

Pure numpy/OpenCV (+ optional dlib); never imports Lightning, Hydra or W&B (layer 1, like zoo.io and zoo.gan).

**Detectors** (weights inside installed wheels, nothing downloaded), by name (:func:`load_face_detector`):

- ``"dlib"``: dlib's frontal face detector, HOG features + a linear SVM over a sliding window and an image
  pyramid (Dalal & Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR 2005; the model is built
  into dlib, ``pip install dlib-bin``). About 10 ms on a 256-px photo (1 core); finds frontal to ~30° yaw faces
  of at least ~80 px (``upsample=1`` halves that, at 4× the cost).
- ``"dlib_cnn"``: dlib's max-margin object detector CNN (King, "Max-Margin Object Detection", 2015;
  ``mmod_human_face_detector.dat`` from the ``face-recognition-models`` wheel). More poses, ~40× slower on CPU.
- ``"opencv"``: OpenCV's Haar cascade (Viola & Jones, CVPR 2001) ``haarcascade_frontalface_default.xml`` from
  ``cv2.data.haarcascades``. OpenCV 5 moved the cascade classifier to opencv-contrib and its wheels ship no
  cascades (this project pins ``opencv-python-headless>=4.8``: with 5.x this detector is unavailable and says so;
  pass ``cascade=<path to the xml>`` with an OpenCV 4 build).

A detector is ``det(image) -> (boxes float32 [K, 4], scores float32 [K])`` on a uint8 [H, W] or [H, W, 3] RGB image,
boxes ``(x0, y0, x1, y1)`` in the image's 0-based pixel-centre coordinates (x0/x1: centres of the box's first and
last pixel column), sorted by score. Photos larger than ``max_side`` are shrunk (INTER_AREA) for detection and the
boxes mapped back: ``x = (x' + 0.5) / f - 0.5`` for the resampling factor ``f``.

**Box to crop** (:class:`BoxToCrop`): a landmark model sees the square crop of side ``crop_scale · max(w, h)`` of
the *landmark* bounding box (zoo.datamodules.crop.face_square) — at test time there are no landmarks, only a
detector box, framed differently (dlib's HOG box runs from the brows to the chin and leaves out the jaw's sides).
The map from one to the other is learnt by least squares on the training faces (:func:`fit_coef`; on photos
:func:`zoo.models.photos.fit_box_to_crop`)::

    (c_x, c_y, side) = (b_x, b_y, 0) + s · p_0 + (w - h) · p_1,      s = sqrt(w · h)

with ``(b_x, b_y)``, ``w``, ``h`` the detector box's centre and size and ``p_0``, ``p_1`` rows of 3 numbers,
fitted on ``t_i / s_i = p_0 + a_i · p_1`` with ``t_i = (c_x - b_x, c_y - b_y, side)`` of training face ``i`` (its
landmark crop square relative to its detector box) and ``a_i = (w_i - h_i) / s_i``: every face weighs the same
whatever its size, and the map is exact under translation and scaling of the photo (no constant pixel terms).
``p_0`` is the mean offset and side in units of the box size, ``p_1`` how they change with the box's aspect.
Square boxes (dlib, Haar) leave ``p_1`` undetermined (dlib's HOG boxes differ from square only by the pyramid's
pixel rounding, ~1 %): singular values below 5 % of the largest are dropped (``np.linalg.lstsq(rcond=0.05)``), so
``p_1 = 0`` and ``p_0`` is the plain mean when the aspect hardly varies, instead of a large ``p_1`` fitted to
rounding noise.
A detection belongs to an annotated face (:func:`match_face`) when its centre lies in the face's landmark box and
its IoU with that box is at least ``min_iou`` (0.25); of several, the one with the highest IoU.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from zoo.checks import check_choice, check_int, check_number, check_path, invalid

__all__ = ["DLIB_HINT", "dlib_available", "dlib_model_path", "HogFaceDetector", "MmodFaceDetector", "HaarFaceDetector",
           "FACE_DETECTORS", "load_face_detector", "BoxToCrop", "fit_coef", "match_face", "box_iou",
           "landmark_box"]

DLIB_HINT = ("install dlib's detector with `pip install dlib-bin face-recognition-models` "
             "(both in zoo's `dev` extra; the 68-point model ships inside face-recognition-models)")


# ---- dlib and its model files ---------------------------------------------------------------------------------
def dlib_available() -> bool:
    """True when both ``dlib`` and ``face_recognition_models`` are importable."""
    return importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None


def dlib_model_path(name: str = "shape_predictor_68_face_landmarks.dat", what: str = "detector 'dlib'") -> Path:
    """Path of a model file inside the ``face_recognition_models`` wheel (found without importing the package:
    its ``__init__`` needs pkg_resources, absent from new setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{what}: package face_recognition_models is not installed; {DLIB_HINT}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / name
        if path.is_file():
            return path
    raise ValueError(f"{what}: {name} missing from face_recognition_models; {DLIB_HINT}")


def _import_dlib(what: str) -> Any:
    try:
        import dlib
    except ImportError:
        raise ValueError(f"{what} is not installed; {DLIB_HINT}") from None
    return dlib


# ---- detectors ------------------------------------------------------------------------------------------------
def _as_uint8(image: Any) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise invalid("image", f"{a.dtype} array {a.shape}", "wrong type or shape", "uint8 [H, W] or [H, W, 3] RGB")
    return np.ascontiguousarray(a)


class _Detector:
    """Shared resizing and box conversion; subclasses implement ``_detect(image) -> (boxes, scores)`` on the
    resized image, boxes in its pixel-centre coordinates."""

    name = ""

    def __init__(self, max_side: int | None = 1024) -> None:
        self.max_side = None if max_side is None else check_int("detector.max_side", max_side, low=32)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, image: Any) -> tuple[np.ndarray, np.ndarray]:
        img = _as_uint8(image)
        h, w = img.shape[:2]
        f = 1.0
        if self.max_side is not None and max(h, w) > self.max_side:
            f = self.max_side / max(h, w)
            img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
            f = img.shape[1] / w  # the factor actually applied (x); y differs by < 1 px rounding
        boxes, scores = self._detect(img)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if f != 1.0:
            fy = img.shape[0] / h
            boxes = (boxes + 0.5) / np.array([f, fy, f, fy]) - 0.5
        order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
        return boxes[order].astype(np.float32), np.asarray(scores, np.float32).reshape(-1)[order]

    def settings(self) -> dict[str, Any]:
        """What decides the boxes (stored with a :class:`BoxToCrop` so a map is not reused across settings)."""
        return {"name": self.name, "max_side": self.max_side}


def _rect_box(r: Any) -> list[float]:
    return [float(r.left()), float(r.top()), float(r.right()), float(r.bottom())]


class HogFaceDetector(_Detector):
    """dlib's HOG frontal face detector (module doc). ``upsample``: times the image is doubled before the pyramid
    (0: faces from ~80 px; 1: from ~40 px, 4× slower); ``threshold``: SVM score cut (dlib's default 0)."""

    name = "dlib"

    def __init__(self, upsample: int = 0, threshold: float = 0.0, max_side: int | None = 1024) -> None:
        super().__init__(max_side)
        dlib = _import_dlib("detector 'dlib'")
        self.upsample = check_int("detector.upsample", upsample, low=0, high=3)
        self.threshold = check_number("detector.threshold", threshold)
        self._hog = dlib.get_frontal_face_detector()

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, scores, _ = self._hog.run(image, self.upsample, self.threshold)
        return np.array([_rect_box(r) for r in rects], np.float64).reshape(-1, 4), np.asarray(scores, np.float64)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "upsample": self.upsample, "threshold": self.threshold}


class MmodFaceDetector(_Detector):
    """dlib's CNN face detector (``mmod_human_face_detector.dat``, module doc); ``upsample`` as for HOG."""

    name = "dlib_cnn"

    def __init__(self, upsample: int = 0, max_side: int | None = 1024) -> None:
        super().__init__(max_side)
        dlib = _import_dlib("detector 'dlib_cnn'")
        self.upsample = check_int("detector.upsample", upsample, low=0, high=3)
        self._cnn = dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod_human_face_detector.dat",
                                                                         "detector 'dlib_cnn'")))

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dets = self._cnn(image, self.upsample)
        return (np.array([_rect_box(d.rect) for d in dets], np.float64).reshape(-1, 4),
                np.array([d.confidence for d in dets], np.float64))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "upsample": self.upsample}


HAAR_HINT = ("OpenCV's Haar cascades ship with OpenCV 4 wheels only (cv2.data.haarcascades); OpenCV 5 moved the "
             "cascade classifier to opencv-contrib. Use detector=dlib (in the dev extra), or install "
             "`opencv-python-headless<5` / pass detector.cascade=<haarcascade_frontalface_default.xml>")


class HaarFaceDetector(_Detector):
    """OpenCV Haar cascade (module doc): ``scale_factor``/``min_neighbors``/``min_size`` as in
    ``CascadeClassifier.detectMultiScale``; the score is the number of neighbouring detections (level weight)."""

    name = "opencv"

    def __init__(self, cascade: str | os.PathLike | None = None, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 40, max_side: int | None = 1024) -> None:
        super().__init__(max_side)
        if not hasattr(cv2, "CascadeClassifier"):
            raise ValueError(f"detector 'opencv': this OpenCV ({cv2.__version__}) has no CascadeClassifier; {HAAR_HINT}")
        if cascade is None:
            root = getattr(getattr(cv2, "data", None), "haarcascades", None)
            cascade = Path(root or "") / "haarcascade_frontalface_default.xml"
            if not root or not Path(cascade).is_file():
                raise ValueError(f"detector 'opencv': {cascade} is not in this OpenCV ({cv2.__version__}) wheel; "
                                 f"{HAAR_HINT}")
        cascade = check_path("detector.cascade", str(cascade), kind="file")
        self.cascade_path = str(cascade)
        self.scale_factor = check_number("detector.scale_factor", scale_factor, low=1.0)
        self.min_neighbors = check_int("detector.min_neighbors", min_neighbors, low=0)
        self.min_size = check_int("detector.min_size", min_size, low=1)
        self._cc = cv2.CascadeClassifier(self.cascade_path)
        if self._cc.empty():
            raise ValueError(f"detector.cascade={self.cascade_path!r} is invalid: OpenCV could not load it; expected "
                             f"a Haar cascade XML file")

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, _, weights = self._cc.detectMultiScale3(gray, scaleFactor=self.scale_factor,
                                                       minNeighbors=self.min_neighbors,
                                                       minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        r = np.asarray(rects, np.float64).reshape(-1, 4)
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2] - 1, r[:, 1] + r[:, 3] - 1], axis=1)
        return boxes, np.asarray(weights, np.float64).reshape(-1)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "cascade": Path(self.cascade_path).name, "scale_factor": self.scale_factor,
                "min_neighbors": self.min_neighbors, "min_size": self.min_size}


FACE_DETECTORS: dict[str, Callable[..., _Detector]] = {"dlib": HogFaceDetector, "dlib_cnn": MmodFaceDetector,
                                                       "opencv": HaarFaceDetector}


def load_face_detector(name: Any = "dlib", **kwargs: Any) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """A face box detector by name (``dlib``, ``dlib_cnn``, ``opencv``; keyword arguments go to its class) or any
    callable ``det(image) -> (boxes [K, 4], scores [K])``, returned as is."""
    if callable(name):
        return name
    check_choice("detector", name, sorted(FACE_DETECTORS))
    return FACE_DETECTORS[name](**kwargs)


def detector_settings(detector: Any) -> dict[str, Any]:
    """The settings a :class:`BoxToCrop` records for ``detector`` (its ``settings()``, else its type name)."""
    fn = getattr(detector, "settings", None)
    return dict(fn()) if callable(fn) else {"name": type(detector).__name__}


# ---- matching detections to annotated faces -------------------------------------------------------------------
def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) bounding box of [L, 2] points."""
    pts = np.asarray(landmarks, np.float64)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` [K, 4] with one box ``b`` [4] (continuous areas, (x1 - x0)·(y1 - y0))."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_face(boxes: np.ndarray, landmarks: np.ndarray, min_iou: float = 0.25) -> int:
    """Index of the detection of the face annotated by ``landmarks`` (module doc), or -1 when none qualifies."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return -1
    lb = landmark_box(landmarks)
    c = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    inside = (c[:, 0] >= lb[0]) & (c[:, 0] <= lb[2]) & (c[:, 1] >= lb[1]) & (c[:, 1] <= lb[3])
    iou = np.where(inside, box_iou(boxes, lb), -1.0)
    i = int(np.argmax(iou))
    return i if iou[i] >= min_iou else -1


# ---- the box -> crop map --------------------------------------------------------------------------------------
def _box_features(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres [K, 2], features [K, 2] = (1, (w - h) / s), s = sqrt(w h) [K]) of boxes [K, 4]."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    size = b[:, 2:] - b[:, :2]
    if not (size > 0).all():
        bad = int(np.flatnonzero(~(size > 0).all(axis=1))[0])
        raise invalid("boxes", b[bad].tolist(), "zero or negative width/height", "(x0, y0, x1, y1) with x1 > x0, y1 > y0")
    s = np.sqrt(size[:, 0] * size[:, 1])
    f = np.stack([np.ones(len(b)), (size[:, 0] - size[:, 1]) / s], axis=1)
    return 0.5 * (b[:, :2] + b[:, 2:]), f, s


@dataclass
class BoxToCrop:
    """Least-squares map from detector boxes to the landmark crop squares (module doc). ``coef``: [[p_0], [p_1]]
    (2 x 3); ``crop_scale``: the datamodule's (the squares are ``crop_scale`` × the landmark box); ``detector``: the
    detector settings it was fitted with; ``stats``: faces used/missed and the fit's normalised residuals."""

    coef: np.ndarray
    crop_scale: float
    detector: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coef = np.asarray(self.coef, np.float64).reshape(2, 3)

    def squares(self, boxes: np.ndarray) -> np.ndarray:
        """float64 [K, 3] (c_x, c_y, side) of the crop squares for detector ``boxes`` [K, 4]."""
        centre, f, s = _box_features(boxes)
        t = (f @ self.coef) * s[:, None]
        out = np.concatenate([centre + t[:, :2], t[:, 2:]], axis=1)
        if not (out[:, 2] > 0).all():
            raise ValueError(f"box-to-crop map {self.coef.tolist()} gives a crop side <= 0 for boxes {boxes!r}")
        return out

    def face_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """float64 [K, 4] boxes whose ``zoo.datamodules.crop.face_square(box=..., scale=crop_scale)`` is :meth:`squares`' square (what
        :class:`zoo.models.inference.LandmarkPredictor` takes as ``boxes``)."""
        sq = self.squares(boxes)
        half = sq[:, 2:] / (2 * self.crop_scale)
        return np.concatenate([sq[:, :2] - half, sq[:, :2] + half], axis=1)

    # ---- persistence -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["coef"] = self.coef.tolist()
        d["formula"] = ("(cx, cy, side) = (box_cx, box_cy, 0) + s * coef[0] + (w - h) * coef[1], s = sqrt(w * h); "
                        "the model's crop is the square of that side around (cx, cy)")
        return d

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike, what: str = "box_mapping") -> "BoxToCrop":
        p = check_path(what, str(path), kind="file")
        try:
            d = json.loads(p.read_text())
            return cls(coef=d["coef"], crop_scale=float(d["crop_scale"]), detector=dict(d.get("detector") or {}),
                       stats=dict(d.get("stats") or {}))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{what}={str(p)!r} is invalid: not a box-to-crop map ({type(e).__name__}: {e}); expected "
                             f"the JSON written by zoo.detection.BoxToCrop.save (keys coef [2x3], crop_scale)") from None

    def check_compatible(self, detector: Any, crop_scale: float, what: str = "box_mapping") -> None:
        """ValueError when the map was fitted for another detector setting or crop scale than these."""
        want = detector_settings(detector)
        if self.detector and self.detector != want:
            raise ValueError(f"{what}: the box-to-crop map was fitted with detector {self.detector}, not {want}; "
                             f"refit it (delete the JSON) or use the detector it was fitted with")
        if not math.isclose(self.crop_scale, float(crop_scale), rel_tol=1e-6):
            raise ValueError(f"{what}: the box-to-crop map was fitted for crop_scale {self.crop_scale}, the model "
                             f"was trained with {crop_scale}")


def fit_coef(det_boxes: np.ndarray, squares: np.ndarray, rcond: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(coef [2, 3], normalised residuals [N, 3]) of the least-squares fit (module doc) of the crop ``squares``
    [N, 3] (c_x, c_y, side) from detector boxes [N, 4]."""
    centre, f, s = _box_features(det_boxes)
    sq = np.asarray(squares, np.float64).reshape(-1, 3)
    if len(sq) != len(centre):
        raise ValueError(f"fit_coef: {len(centre)} boxes but {len(sq)} crop squares")
    if len(sq) < 1:
        raise ValueError("fit_coef: no detected faces to fit the box-to-crop map on")
    t = np.concatenate([sq[:, :2] - centre, sq[:, 2:]], axis=1) / s[:, None]
    coef, *_ = np.linalg.lstsq(f, t, rcond=rcond)
    return coef, t - f @ coef
