"""The annotation record every landmark reader returns (300-W folders, keypoint CSV, WFLW lists).

A record is one annotated face: where its image is, its landmarks in the image's 0-based pixel-centre
coordinates, an optional face box and optional attribute flags. Readers validate the annotation (count,
finiteness) and name the file (and line) in every error; images are decoded later by the dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LandmarkRecord:
    image: Path  # image file
    landmarks: np.ndarray  # float32 [L, 2], x, y in image pixels, 0-based, pixel-centre convention
    key: str  # stable identifier used for splits and split files (relative path, e.g. "afw_68/1051618982_1.jpg")
    source: str  # subset name the record came from (root folder or annotation file stem)
    origin: str  # where the annotation lives, for error messages ("file.pts", "list.txt:12")
    box: np.ndarray | None = None  # float32 [4] x_min, y_min, x_max, y_max in image pixels, or None
    attributes: np.ndarray | None = None  # int64 [A] attribute flags (WFLW), or None


def check_landmarks(points: np.ndarray, origin: str, num_points: int | None) -> np.ndarray:
    """float32 [L, 2] copy of ``points``; ValueError naming ``origin`` on wrong count, NaN/inf, or 3+ points all
    within one pixel (the usual cause: coordinates normalised to [0, 1] where pixels are expected)."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{origin}: landmarks must be [L, 2], got shape {pts.shape}")
    if num_points is not None and pts.shape[0] != num_points:
        raise ValueError(f"{origin}: holds {pts.shape[0]} points, expected {num_points}")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise ValueError(f"{origin}: non-finite (NaN/inf) coordinates at point(s) {np.flatnonzero(bad).tolist()[:10]}")
    if len(pts) >= 3 and float(np.ptp(pts, axis=0).max()) <= 1.0:  # no face scheme has fewer than 5 points
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        looks = ("coordinates look normalised to [0, 1]; expected pixels" if x0 >= -1.0 and y0 >= -1.0 and
                 x1 <= 1.0 and y1 <= 1.0 else "expected pixel coordinates of a face")
        raise ValueError(f"{origin}: all {len(pts)} landmarks lie within 1 pixel (x in [{x0:g}, {x1:g}], y in "
                         f"[{y0:g}, {y1:g}]): {looks} (multiply by the image width and height)")
    return pts


def check_in_image(points: np.ndarray, width: int, height: int, origin: str, image: object = "the image") -> None:
    """ValueError naming ``origin`` when a landmark lies more than one image side (max(width, height)) outside
    the ``width`` x ``height`` image: the annotation does not belong to this image (another image's or another
    scale's coordinates). Faces partly outside the image, as 300-W has them, pass."""
    pts = np.asarray(points, dtype=np.float64)
    margin = float(max(width, height))
    below = np.maximum(-pts, 0.0)
    above = np.maximum(pts - np.array([width - 1.0, height - 1.0]), 0.0)
    out = np.maximum(below, above).max(axis=1)
    if pts.size and out.max() > margin:
        i = int(out.argmax())
        raise ValueError(f"{origin}: landmark {i} at ({pts[i, 0]:.1f}, {pts[i, 1]:.1f}) lies {out[i]:.0f} px outside "
                         f"the {width}x{height} image {image} ({int((out > margin).sum())} of {len(pts)} points more "
                         f"than {margin:.0f} px outside); expected pixel coordinates of this image (wrong image file, "
                         f"or coordinates of a resized image?)")
