"""Augmentation recipes for landmark crops (``augment=fuhl2019|light|none``).

A recipe has two halves:

* **geometric** (box shift, rotation, zoom, horizontal flip): drawn by :meth:`LandmarkAugment.sample_geometry`
  as a :class:`~zoo.datamodules.crop.CropGeometry` and applied by the dataset *inside its crop warp*
  (zoo.datamodules.crop), so the image is interpolated once and the landmarks move by the same matrix.
  A flip mirrors x' = S - 1 - x and the dataset re-orders points with the scheme's left/right permutation.
* **photometric** (noise, blur, occlusion, contrast, brightness): an albumentations ``Compose`` applied to the
  uint8 crop with keypoint support (``KeypointParams(format="xy", remove_invisible=False)``), so geometric
  albumentations transforms a user appends move the landmarks too (albumentations' own pixel convention then
  applies). Landmarks pushed out of the crop by augmentation stay labelled and visible: the coordinate is
  still defined, and the loss keeps pulling predictions to it.

Seed 002 (Fuhl & Kasneci, "Learning to Validate the Quality of Detected Landmarks", Sec. 5) uses noise of
up to 20 %, a box shift of up to 20 % in any direction, rotation in [-1, 1] rad (±57.3°: ``rotation`` is in
degrees), Gaussian blur σ ∈ [1.0, 1.3],
occlusions covering up to 50 % of the image with grey values in [0, 30], [200, 255] or [0, 255], contrast in
[-30, 30] and grayscale images. The paper gives no probabilities; :func:`fuhl2019` applies each photometric
transform with probability ``p`` (0.5) and draws shift and rotation uniformly for every sample. The
horizontal flip is a zoo addition (p 0.5, set ``flip: 0`` for the paper's recipe).

Randomness: each recipe owns a numpy Generator (geometry) and its Compose's generators; datasets call
:func:`seed_augment` before each sample. An index drawn by a zoo sampler carries its own seed
(:class:`zoo.datamodules.samplers._common.Draw`: seed, epoch, rank, position in the epoch), and the recipe is
reseeded with it, so a sample's augmentation does not depend on the worker that loads it and a run resumed
mid-epoch augments exactly as the uninterrupted one. A plain ``int`` index (another sampler, evaluation) falls
back to one reseed per process with torch's per-worker seed (``get_worker_info().seed``, or
``torch.initial_seed()`` without workers): reproducible under ``seed_everything``, different per worker
(albumentations 2.0.8 does not reseed per worker by itself).
"""
from __future__ import annotations

from typing import Any, Sequence

import inspect
import math
import os

import albumentations as A
import numpy as np

from zoo.checks import check_number, check_probability, check_range_pair, invalid
from zoo.datamodules.crop import CropGeometry


def seed_augment(augment: Any, index: Any) -> None:
    """Reseed ``augment`` (anything with ``reseed(int)``) for the sample ``index``: with the draw's own seed when
    the index carries one (a zoo sampler's ``Draw``), else once per process from torch's worker seed."""
    seed = getattr(index, "seed", None)
    if seed is not None:
        augment.reseed(seed)
        augment._zoo_seeded_pid = None  # a later plain index reseeds from the worker seed again
        return
    pid = os.getpid()
    if getattr(augment, "_zoo_seeded_pid", None) != pid:
        import torch
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        augment.reseed(info.seed if info is not None else torch.initial_seed())
        augment._zoo_seeded_pid = pid

#: 1 rad in degrees: the seed-002 rotation limit (configs give rotation in degrees)
ONE_RADIAN = math.degrees(1.0)


def _symmetric(name: str, value: Any, high: float) -> tuple[float, float]:
    """``x`` -> [-x, x] (x >= 0) or a [low, high] pair, inside [-high, high]; ValueError naming ``augment.<name>``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        check_number(f"augment.{name}", value, low=0, high=high, low_inclusive=True, high_inclusive=True)
    return check_range_pair(f"augment.{name}", value, low=-high, high=high)


def _unknown(recipe: str, unknown: dict[str, Any], known: Any) -> None:
    if unknown:
        key = sorted(unknown)[0]
        raise invalid(f"augment.{key}", unknown[key], f"not a key of the {recipe} recipe",
                      f"one of {', '.join(n for n, q in inspect.signature(known).parameters.items() if q.kind != q.VAR_KEYWORD)}")


class Contrast(A.ImageOnlyTransform):
    """Contrast change by ``c`` grey levels, c ~ U[-limit, limit] (seed 002: limit 30).

    out = clip((x - 127.5) · (1 + 2c / 255) + 127.5, 0, 255): for c > 0 the grey range is stretched so
    that black and white move outwards by c levels, for c < 0 it is compressed by c levels at each end.
    """

    def __init__(self, limit: float = 30.0, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.limit = _symmetric("contrast", limit, 255.0)

    def get_params(self) -> dict[str, Any]:
        return {"c": self.py_random.uniform(*self.limit)}

    def apply(self, img: np.ndarray, c: float = 0.0, **params: Any) -> np.ndarray:
        f = 1.0 + 2.0 * c / 255.0
        out = (img.astype(np.float32) - 127.5) * f + 127.5
        return np.clip(np.rint(out), 0, 255).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("limit",)


class Occlusion(A.ImageOnlyTransform):
    """One axis-aligned grey rectangle covering a fraction a ~ U[min_area, max_area] of the image.

    Aspect ratio r ~ logU[1/3, 3] (w = sqrt(a·r)·W, h = sqrt(a/r)·H, clipped to the image), position uniform
    inside the image. Fill: one grey value drawn from dark [0, 30], bright [200, 255] or any [0, 255], the
    three modes equally likely (seed 002: occlusions up to 50 % of the image).
    """

    FILLS = {"dark": (0, 30), "bright": (200, 255), "random": (0, 255)}

    def __init__(self, max_area: float = 0.5, min_area: float = 0.02, fills: Sequence[str] = ("dark", "bright", "random"),
                 p: float = 0.5) -> None:
        super().__init__(p=p)
        if not 0 <= min_area <= max_area <= 1:
            raise ValueError(f"augment occlusion areas must satisfy 0 <= min_area <= max_area <= 1, got "
                             f"{min_area}, {max_area}")
        bad = [f for f in fills if f not in self.FILLS]
        if bad or not fills:
            raise ValueError(f"augment occlusion fills {list(fills)} invalid; expected a subset of {list(self.FILLS)}")
        self.max_area, self.min_area, self.fills = float(max_area), float(min_area), tuple(fills)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        rnd = self.py_random
        area = rnd.uniform(self.min_area, self.max_area)
        ratio = float(np.exp(rnd.uniform(np.log(1 / 3), np.log(3))))
        rw = min(w, max(1, int(round(np.sqrt(area * ratio) * w))))
        rh = min(h, max(1, int(round(np.sqrt(area / ratio) * h))))
        x0 = rnd.randint(0, w - rw)
        y0 = rnd.randint(0, h - rh)
        lo, hi = self.FILLS[rnd.choice(self.fills)]
        return {"rect": (x0, y0, rw, rh), "value": rnd.randint(lo, hi)}

    def apply(self, img: np.ndarray, rect: tuple[int, int, int, int] = (0, 0, 0, 0), value: int = 0,
              **params: Any) -> np.ndarray:
        x0, y0, rw, rh = rect
        out = img.copy()
        out[y0:y0 + rh, x0:x0 + rw] = value
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("max_area", "min_area", "fills")


class LandmarkAugment:
    """A recipe: geometric parameters for the crop warp + a photometric albumentations pipeline.

    Args:
        shift: maximal box shift as a fraction of the crop side in [0, 1]; dx, dy ~ U[-shift, shift] independently
            (so any direction, corners included).
        rotation: maximal rotation in degrees (as albumentations' ``limit`` and mmpose's ``rotate_factor``),
            θ ~ U[-rotation, rotation], at most 180; or a [low, high] range in [-180, 180].
        zoom: (low, high) range of the crop-side factor (1 = none); > 1 shows more context.
        flip: probability of a horizontal flip (landmarks re-ordered by the dataset's scheme).
        photometric: albumentations transforms applied in order to the uint8 crop.
        name: recipe name for logs.
    """

    def __init__(self, shift: float = 0.0, rotation: float | Sequence[float] = 0.0,
                 zoom: Sequence[float] = (1.0, 1.0), flip: float = 0.0,
                 photometric: Sequence[A.BasicTransform] = (), name: str = "custom") -> None:
        self.shift = check_number("augment.shift", shift, low=0, high=1, low_inclusive=True, high_inclusive=True)
        self.rotation = _symmetric("rotation", rotation, 180.0)  # degrees
        if isinstance(zoom, (int, float)) and not isinstance(zoom, bool):
            zoom = (zoom, zoom)
        self.zoom = check_range_pair("augment.zoom", zoom, low=0.0, high=math.inf, inclusive=False)
        self.flip = check_probability("augment.flip", flip)
        self.name = name
        photometric = list(photometric)
        # keypoints only travel through the pipeline when some transform moves pixels
        self.moves_points = any(not isinstance(t, A.ImageOnlyTransform) for t in photometric)
        kp = A.KeypointParams(format="xy", remove_invisible=False) if self.moves_points else None
        self.compose = A.Compose(photometric, keypoint_params=kp)
        self.rng = np.random.default_rng()
        self.reseed(0)

    def reseed(self, seed: int) -> None:
        """Reset the geometric generator and the albumentations pipeline to ``seed``."""
        seed = int(seed) % (2**63)
        self.rng = np.random.default_rng(seed)
        self.compose.set_random_seed(seed)

    def sample_geometry(self) -> CropGeometry:
        r = self.rng
        dx, dy = r.uniform(-self.shift, self.shift, size=2) if self.shift else (0.0, 0.0)
        angle = math.radians(r.uniform(*self.rotation)) if self.rotation != (0.0, 0.0) else 0.0
        zoom = r.uniform(*self.zoom) if self.zoom[0] != self.zoom[1] else self.zoom[0]
        flip = bool(r.random() < self.flip) if self.flip else False
        return CropGeometry(shift=(float(dx), float(dy)), angle=float(angle), zoom=float(zoom), flip=flip)

    def photometric(self, image: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the albumentations pipeline to a uint8 crop ([H, W] or [H, W, C]) and its [L, 2] landmarks."""
        if not self.compose.transforms:
            return image, keypoints
        if not self.moves_points:
            img = self.compose(image=image)["image"]
        else:
            out = self.compose(image=image, keypoints=np.asarray(keypoints, dtype=np.float32))
            img, keypoints = out["image"], np.asarray(out["keypoints"], dtype=np.float32).reshape(-1, 2)
        if image.ndim == 2 and img.ndim == 3:
            img = img[..., 0]
        return img, keypoints

    def __repr__(self) -> str:
        return (f"LandmarkAugment({self.name}: shift={self.shift}, rotation={self.rotation}, zoom={self.zoom}, "
                f"flip={self.flip}, photometric=[{', '.join(type(t).__name__ for t in self.compose.transforms)}])")


def fuhl2019(noise: float = 0.2, shift: float = 0.2, rotation: float | Sequence[float] = ONE_RADIAN,
             blur_sigma: Sequence[float] = (1.0, 1.3), occlusion: float = 0.5, contrast: float = 30.0,
             flip: float = 0.5, zoom: Sequence[float] = (1.0, 1.0), p: float = 0.5, **unknown: Any) -> LandmarkAugment:
    """The seed-002 recipe (Fuhl & Kasneci, Sec. 5); values in the module docstring.

    noise: per-pixel uniform noise in [-noise, noise]·255 (albumentations AdditiveNoise).
    blur_sigma: Gaussian blur σ range in crop pixels (albumentations GaussianBlur, kernel from σ).
    occlusion: maximal covered fraction (:class:`Occlusion`). contrast: ± grey levels (:class:`Contrast`).
    rotation: degrees (the paper's ±1 rad = ±57.3°). p: probability of each photometric transform. A value of 0
    disables that transform. Every key is checked here (ValueError naming ``augment.<key>``), before
    albumentations sees it.
    """
    _unknown("fuhl2019", unknown, fuhl2019)
    check_number("augment.noise", noise, low=0, high=1, low_inclusive=True, high_inclusive=True)
    check_number("augment.occlusion", occlusion, low=0, high=1, low_inclusive=True, high_inclusive=True)
    check_number("augment.contrast", contrast, low=0, high=255, low_inclusive=True, high_inclusive=True)
    check_probability("augment.p", p)
    t: list[A.BasicTransform] = []
    if contrast:
        t.append(Contrast(limit=contrast, p=p))
    if blur_sigma:
        lo, hi = check_range_pair("augment.blur_sigma", blur_sigma, low=0.0, high=math.inf, inclusive=False)
        t.append(A.GaussianBlur(blur_limit=0, sigma_limit=(lo, hi), p=p))
    if occlusion:
        t.append(Occlusion(max_area=occlusion, min_area=min(0.02, occlusion), p=p))
    if noise:
        t.append(A.AdditiveNoise(noise_type="uniform", spatial_mode="per_pixel",
                                 noise_params={"ranges": [(-float(noise), float(noise))]}, p=p))
    return LandmarkAugment(shift=shift, rotation=rotation, zoom=zoom, flip=flip, photometric=t, name="fuhl2019")


def light(shift: float = 0.05, rotation: float | Sequence[float] = 0.2 * ONE_RADIAN,
          zoom: Sequence[float] = (0.95, 1.05), flip: float = 0.5, brightness: float = 0.1, contrast: float = 0.1,
          p: float = 0.5, **unknown: Any) -> LandmarkAugment:
    """Mild recipe: small shift/rotation (degrees, default ±11.46° = ±0.2 rad)/zoom, flip, brightness/contrast
    (albumentations RandomBrightnessContrast, limits in [0, 1]). Keys checked as in :func:`fuhl2019`."""
    _unknown("light", unknown, light)
    check_number("augment.brightness", brightness, low=0, high=1, low_inclusive=True, high_inclusive=True)
    check_number("augment.contrast", contrast, low=0, high=1, low_inclusive=True, high_inclusive=True)
    check_probability("augment.p", p)
    t = [A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=p)] \
        if (brightness or contrast) else []
    return LandmarkAugment(shift=shift, rotation=rotation, zoom=zoom, flip=flip, photometric=t, name="light")


def none() -> None:
    """``augment=none``: no augmentation (the datamodule receives None)."""
    return None
