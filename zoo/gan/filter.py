"""The landmark-disagreement filter of Cheng et al. (seed 004): keep a GAN edit only when a landmark detector
finds the same landmarks on it as on the original.

For 68-point iBUG landmarks ``p`` (original) and ``q`` (edit) of one face, with the inter-ocular distance
``d = ||p_36 - p_45||`` (outer eye corners of the original, the 300-W normalisation)::

    score = sqrt( mean_i ||p_i - q_i||² ) / d              (all 68 points)
    regions[r] = sqrt( mean_{i in r} ||p_i - q_i||² ) / d   (r in eyes, brows, nose, mouth, jaw)
    keep = score < threshold

dlib's noise between a face and a photometric-only edit of it is about 0.01 (0.027 at the 90th percentile),
so thresholds of 0.03–0.06 separate photometric from geometric edits.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from zoo.checks import check_number, invalid
from zoo.gan.detectors import load_detector, to_uint8

__all__ = ["REGIONS", "LandmarkDisagreement", "disagreement"]

REGIONS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "brows": tuple(range(17, 27)),
    "nose": tuple(range(27, 36)),
    "eyes": tuple(range(36, 48)),
    "mouth": tuple(range(48, 68)),
}


def disagreement(original: np.ndarray, edited: np.ndarray) -> dict[str, Any]:
    """Normalised RMSE (see module docstring) of landmark sets [N, 68, 2] -> dict(score [N], regions {name: [N]})."""
    p = np.asarray(original, np.float64)
    q = np.asarray(edited, np.float64)
    if p.shape != q.shape or p.ndim != 3 or p.shape[1:] != (68, 2):
        raise invalid("landmarks", f"arrays {p.shape} and {q.shape}", "wrong shape", "two [N, 68, 2] arrays")
    d = np.linalg.norm(p[:, 36] - p[:, 45], axis=1)
    d = np.maximum(d, 1e-6)
    sq = ((p - q) ** 2).sum(-1)  # [N, 68]
    score = np.sqrt(sq.mean(1)) / d
    regions = {r: (np.sqrt(sq[:, list(idx)].mean(1)) / d).astype(np.float32) for r, idx in REGIONS.items()}
    return {"score": score.astype(np.float32), "regions": regions}


class LandmarkDisagreement:
    """``filt(original, edited)`` -> dict(score [N], regions {eyes, brows, nose, mouth, jaw: [N]}, keep [N] bool,
    landmarks_original / landmarks_edited [N, 68, 2]). Images: [N, 3, H, W] in [-1, 1] (tensor or array) or
    uint8 [N, H, W, 3]. ``detector``: a name for :func:`zoo.gan.load_detector` or any callable.
    ``original_landmarks`` may be passed to skip detecting on the originals again (they are reused across edits)."""

    def __init__(self, detector: Any = "dlib", threshold: float = 0.05) -> None:
        self.threshold = check_number("threshold", threshold, low=0.0, high=1.0, high_inclusive=True)
        self.detector: Callable = load_detector(detector)

    def detect(self, images: Any) -> np.ndarray:
        out = np.asarray(self.detector(to_uint8(images)), np.float32)
        return out

    def __call__(self, original: Any, edited: Any, original_landmarks: np.ndarray | None = None) -> dict[str, Any]:
        n_o, n_e = len(original) if original is not None else len(original_landmarks), len(edited)
        if n_o != n_e:
            raise invalid("edited", f"{n_e} images", f"does not match the {n_o} originals", "one edit per original")
        p = self.detect(original) if original_landmarks is None else np.asarray(original_landmarks, np.float32)
        q = self.detect(edited)
        res = disagreement(p, q)
        res["keep"] = res["score"] < self.threshold
        res["landmarks_original"], res["landmarks_edited"] = p, q
        return res
