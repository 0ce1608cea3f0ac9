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
    """float32 [L, 2] copy of ``points``; ValueError naming ``origin`` on wrong count or NaN/inf."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{origin}: landmarks must be [L, 2], got shape {pts.shape}")
    if num_points is not None and pts.shape[0] != num_points:
        raise ValueError(f"{origin}: holds {pts.shape[0]} points, expected {num_points}")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise ValueError(f"{origin}: non-finite (NaN/inf) coordinates at point(s) {np.flatnonzero(bad).tolist()[:10]}")
    return pts
