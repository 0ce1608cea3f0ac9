"""Real face -> GAN crop: a similarity transform onto the generator's mean landmark shape.

The transform is the least-squares similarity (rotation, uniform scale, translation) of Umeyama
("Least-squares estimation of transformation parameters between two point patterns", TPAMI 1991)
mapping the face's 68 landmarks onto ``G.mean_landmarks``; the crop is ``cv2.warpAffine`` of the image
with it (bilinear; a Gaussian anti-alias blur first when it shrinks the face by more than 2×).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from zoo.checks import check_int, invalid

__all__ = ["GanAlignment", "align_faces", "similarity_transform", "calibrate_generator"]


@dataclass
class GanAlignment:
    """``crops`` float32 [N, 3, R, R] in [-1, 1]; ``affines`` float32 [N, 2, 3] mapping image pixels to crop
    pixels (``crop_xy = A[:, :2] @ xy + A[:, 2]``); ``landmarks`` float32 [N, 68, 2] in crop pixels."""

    crops: torch.Tensor
    affines: np.ndarray
    landmarks: np.ndarray

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map crop-pixel points [N, P, 2] back to image pixels (inverse of ``affines``)."""
        A = self.affines[:, :, :2].astype(np.float64)
        t = self.affines[:, :, 2].astype(np.float64)
        inv = np.linalg.inv(A)
        return np.einsum("nij,npj->npi", inv, np.asarray(points, np.float64) - t[:, None, :]).astype(np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama's least-squares similarity [2, 3] with ``dst ≈ s·R·src + t`` (src, dst [P, 2])."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    D = np.diag([1.0, d])
    R = U @ D @ Vt
    var = (a ** 2).sum() / len(src)
    s = (S * np.diag(D)).sum() / var
    t = mu_d - s * R @ mu_s
    return np.concatenate([s * R, t[:, None]], axis=1)


def align_faces(images: Any, landmarks: Any, generator: Any = None, mean_landmarks: np.ndarray | None = None,
                resolution: int | None = None) -> GanAlignment:
    """Crop each face to the generator's frame.

    ``images``: uint8 RGB [N, H, W, 3] or a list of [H, W, 3] / [H, W] arrays of any sizes; ``landmarks``
    [N, 68, 2] float pixels (0-based); ``generator`` supplies ``mean_landmarks`` and ``resolution`` (or pass
    them). Returns :class:`GanAlignment`.
    """
    import cv2

    if mean_landmarks is None:
        mean_landmarks = getattr(generator, "mean_landmarks", None)
        if mean_landmarks is None:
            raise invalid("generator", getattr(generator, "name", generator), "has no mean_landmarks",
                          "a generator with mean_landmarks (zoo.gan.calibrate_generator computes them) or mean_landmarks=")
    resolution = check_int("resolution", resolution if resolution is not None else getattr(generator, "resolution", 64), low=8)
    mean = np.asarray(mean_landmarks, np.float64)
    lms = np.asarray(landmarks, np.float64)
    n = len(images)
    if lms.ndim != 3 or lms.shape[0] != n or lms.shape[1:] != mean.shape:
        raise invalid("landmarks", f"array {lms.shape}", f"does not match {n} images and the {mean.shape} mean shape",
                      f"[{n}, {mean.shape[0]}, 2] pixel coordinates")
    crops = np.empty((n, resolution, resolution, 3), np.uint8)
    affines = np.empty((n, 2, 3), np.float32)
    for i in range(n):
        im = np.asarray(images[i])
        if im.ndim == 2:
            im = np.repeat(im[:, :, None], 3, axis=2)
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise invalid(f"images[{i}]", f"{im.dtype} array {im.shape}", "not an RGB image", "uint8 [H, W, 3] or [H, W]")
        A = similarity_transform(lms[i], mean)
        scale = float(np.sqrt(abs(np.linalg.det(A[:, :2]))))
        src = im
        if scale < 0.5:  # anti-alias before a strong shrink (Gaussian with sigma ~ half the shrink factor)
            sigma = 0.5 / scale
            src = cv2.GaussianBlur(im, (0, 0), sigmaX=sigma * 0.6)
        crops[i] = cv2.warpAffine(src, A, (resolution, resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        affines[i] = A
    out_lm = np.einsum("nij,npj->npi", affines[:, :, :2].astype(np.float64), lms) + affines[:, None, :, 2]
    t = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return GanAlignment(t.contiguous(), affines, out_lm.astype(np.float32))


def calibrate_generator(G: Any, detector: Callable, n: int = 1000, seed: int = 123,
                        batch_size: int = 100) -> np.ndarray:
    """Mean 68-point landmark shape [68, 2] of ``G``'s faces with ``detector`` (sets ``G.mean_landmarks``).
    When the detector reports ``last_found`` (dlib HOG), only faces it found count."""
    n = check_int("n", n, low=2)
    z = G.sample_z(n, seed=seed)
    pts, keep = [], []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            pts.append(np.asarray(detector(G(z[i:i + batch_size]))))
            found = getattr(detector, "last_found", None)
            keep.append(np.ones(len(pts[-1]), bool) if found is None or len(found) != len(pts[-1]) else np.asarray(found))
    P, K = np.concatenate(pts), np.concatenate(keep)
    if not K.any():
        K[:] = True
    mean = P[K].mean(0).astype(np.float32)
    G.mean_landmarks = mean
    return mean
