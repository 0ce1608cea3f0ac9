"""Face crop geometry: the square crop box, the affine warp that cuts it out, and the normalising distance.

Coordinates are 0-based with the pixel-centre convention: pixel ``j`` covers ``[j - 0.5, j + 0.5]``, so a crop
of ``size`` pixels spans ``[-0.5, size - 0.5]`` and its centre is ``(size - 1) / 2``.

The crop of a square of side ``side`` centred on ``c`` (source pixels), with augmentation
(shift ``d`` as a fraction of the side, rotation ``θ``, zoom ``z``, optional horizontal flip), maps a source
point ``x`` to the crop point::

    u = (size - 1)/2 + F · R(θ) · (x - c - d·side) / s,      s = z·side/size  (source pixels per crop pixel)
    R(θ) = [[cos θ, sin θ], [-sin θ, cos θ]],              F = diag(-1, 1) with flip, else identity

so a positive ``θ`` turns the face counter-clockwise on screen (the convention of cv2.getRotationMatrix2D)
and a flip is ``u_x' = size - 1 - u_x`` (the landmark order is then permuted, see :func:`flip_landmarks`).
Shift, rotation, zoom and flip live in this one matrix, so augmentation costs no extra interpolation.

Aligned crops (:func:`align_matrix`, the face-recognition convention of insightface / ArcFace, Deng et al. 2019):
five points (eye centres, nose tip, mouth corners; :func:`five_points` takes them from 68 iBUG landmarks) are
mapped by the least-squares similarity (:func:`similarity_fit`, Umeyama 1991) onto the ArcFace 112-px template
scaled to the crop size, so in-plane rotation and scale are normalised by the eyes and mouth rather than by the
landmarks' bounding box. Augmentation is then applied about the crop centre, inside the same single warp.

Resampling (:func:`warp_crop`): when the crop shrinks the face (``s > 1``) the source region is first reduced
with area interpolation (cv2.INTER_AREA, an anti-aliasing box filter) to about crop resolution, then the
affine warp samples it bilinearly at scale ≈ 1. Sampling a full-size image bilinearly at ``s > 1`` would
alias, and test crops must be made the way training crops are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from zoo.checks import check_choice, invalid
from zoo.schemes import Scheme

NORMS = ("inter_ocular", "inter_pupil", "box", "diagonal")
CROPS = ("full", "keypoints", "box", "aligned")  # identity-data crops (zoo.datamodules.identity, data.crop)


@dataclass(frozen=True)
class CropGeometry:
    """Geometric augmentation applied inside the crop warp (identity by default)."""

    shift: tuple[float, float] = (0.0, 0.0)  # box shift as a fraction of the crop side (image x, y axes)
    angle: float = 0.0  # radians; positive turns the face counter-clockwise on screen
    zoom: float = 1.0  # > 1 takes a larger source square (face appears smaller)
    flip: bool = False  # horizontal mirror, x' = size - 1 - x


def face_square(landmarks: np.ndarray, box: Sequence[float] | None = None, scale: float = 1.25) -> tuple[float, float, float]:
    """(cx, cy, side) of the square crop: the box (or the landmarks' bounding box) enlarged by ``scale``.

    side = scale · max(w, h) with w = x_max - x_min, h = y_max - y_min; the centre is the box centre.
    """
    if box is None:
        pts = np.asarray(landmarks, dtype=np.float64)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
    else:
        x0, y0, x1, y1 = (float(v) for v in box)
    side = scale * max(x1 - x0, y1 - y0)
    if not side > 0:
        raise ValueError(f"face box {[x0, y0, x1, y1]} has zero size; cannot make a crop")
    return 0.5 * (x0 + x1), 0.5 * (y0 + y1), float(side)


def crop_matrix(center: Sequence[float], side: float, size: int, geometry: CropGeometry = CropGeometry()) -> np.ndarray:
    """float64 [2, 3] affine matrix mapping source pixel coordinates to crop pixel coordinates (module doc)."""
    g = geometry
    s = g.zoom * side / size
    c, sn = np.cos(g.angle), np.sin(g.angle)
    lin = np.array([[c, sn], [-sn, c]]) / s
    if g.flip:
        lin[0] *= -1.0
    centre = np.asarray(center, dtype=np.float64) + np.asarray(g.shift, dtype=np.float64) * side
    out = np.full(2, (size - 1) / 2.0)
    return np.concatenate([lin, (out - lin @ centre)[:, None]], axis=1)


# ArcFace / insightface 5-point template of a 112 x 112 crop, pixel-centre coordinates: eye centres (image left,
# image right), nose tip, mouth corners (image left, image right).
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]])


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """float64 [5, 2] alignment points of [68, 2] iBUG landmarks (image-left eye centre = mean of points 36-41,
    image-right eye = 42-47, nose tip 30, mouth corners 48 and 54); [5, 2] input is returned as it is."""
    p = np.asarray(landmarks, dtype=np.float64)
    if p.shape == (5, 2):
        return p.copy()
    if p.shape != (68, 2):
        raise ValueError(f"alignment needs 68 iBUG landmarks or 5 points as [N, 2], got shape {p.shape}")
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """float64 [2, 3] similarity (rotation, isotropic scale, translation; no reflection) minimising
    sum_i ||s R src_i + t - dst_i||^2 in closed form (Umeyama, PAMI 1991): with centred points a_i, b_i,
    covariance C = sum b_i a_i^T / n = U S V^T, R = U diag(1, det(UV^T)) V^T, s = tr(diag(1, d) S) / var(a).

    Written here because the libraries at hand do not offer it: cv2.estimateAffinePartial2D is a robust
    (RANSAC/LMEDS) estimator, not the least-squares fit, and scikit-image is not a dependency."""
    a, b = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2 or len(a) < 2:
        raise ValueError(f"similarity_fit needs two [N, 2] point sets with N >= 2, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("similarity_fit: the points contain NaN or inf; alignment needs finite landmarks")
    ma, mb = a.mean(0), b.mean(0)
    ac, bc = a - ma, b - mb
    var = (ac ** 2).sum() / len(a)
    if not var > 0:
        raise ValueError("similarity_fit: the source points coincide; cannot fit a similarity")
    u, sv, vt = np.linalg.svd(bc.T @ ac / len(a))
    d = np.array([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ np.diag(d) @ vt
    scale = float((sv * d).sum() / var)
    lin = scale * rot
    return np.concatenate([lin, (mb - lin @ ma)[:, None]], axis=1)


def align_matrix(points: np.ndarray, size: int, geometry: CropGeometry = CropGeometry()) -> np.ndarray:
    """float64 [2, 3] matrix from source pixels to an aligned ``size`` crop: the similarity taking
    :func:`five_points` of ``points`` onto :data:`ARCFACE_TEMPLATE_112` scaled to ``size`` (pixel-centre
    convention: u' = (u + 0.5) size / 112 - 0.5), followed by ``geometry`` about the crop centre."""
    template = (ARCFACE_TEMPLATE_112 + 0.5) * (size / 112.0) - 0.5
    base = similarity_fit(five_points(points), template)
    aug = crop_matrix(((size - 1) / 2.0, (size - 1) / 2.0), float(size), size, geometry)
    return np.concatenate([aug[:, :2] @ base[:, :2], (aug[:, :2] @ base[:, 2] + aug[:, 2])[:, None]], axis=1)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine matrix to [N, 2] points (float32 result)."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def matrix_scale(matrix: np.ndarray) -> float:
    """Isotropic scale of the matrix: crop pixels per source pixel (sqrt |det|)."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int, interpolation: str = "area",
              border_value: float = 0.0) -> np.ndarray:
    """Cut the ``size`` x ``size`` crop defined by ``matrix`` out of ``image`` (uint8 [H, W] or [H, W, C]).

    ``interpolation="area"``: when downscaling, INTER_AREA-reduce the needed source region first (module doc);
    ``"linear"``: bilinear warp only. Outside the image the crop is ``border_value``.
    """
    check_choice("data.interpolation", interpolation, ("area", "linear"))
    m = np.asarray(matrix, dtype=np.float64)
    k = matrix_scale(m)  # crop px per source px
    h, w = image.shape[:2]
    kw = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    if interpolation == "linear" or k >= 1.0:
        return cv2.warpAffine(image, m, (size, size), **kw)
    # Source region seen by the crop (corners of [-0.5, size - 0.5]^2 mapped back), padded for the filters.
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    src = corners @ inv[:, :2].T + inv[:, 2]
    pad = int(np.ceil(1.0 / k)) + 2
    x0 = max(int(np.floor(src[:, 0].min())) - pad, 0)
    y0 = max(int(np.floor(src[:, 1].min())) - pad, 0)
    x1 = min(int(np.ceil(src[:, 0].max())) + pad + 1, w)
    y1 = min(int(np.ceil(src[:, 1].max())) + pad + 1, h)
    if x1 <= x0 or y1 <= y0:  # the crop lies entirely outside the image
        shape = (size, size) + image.shape[2:]
        return np.full(shape, border_value, dtype=image.dtype)
    region = image[y0:y1, x0:x1]
    rw, rh = x1 - x0, y1 - y0
    nw, nh = max(1, int(round(rw * k))), max(1, int(round(rh * k)))
    small = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
    # reduced pixel x' sits at source x = (x' + 0.5) * rw / nw - 0.5 + x0 (pixel-area mapping of INTER_AREA)
    ax, ay = rw / nw, rh / nh
    a = np.array([[ax, 0.0, 0.5 * ax - 0.5 + x0], [0.0, ay, 0.5 * ay - 0.5 + y0]])
    total = np.concatenate([m[:, :2] @ a[:, :2], (m[:, :2] @ a[:, 2] + m[:, 2])[:, None]], axis=1)
    out = cv2.warpAffine(small, total, (size, size), **kw)
    return out


def flip_landmarks(points: np.ndarray, size: int, permutation: Sequence[int]) -> np.ndarray:
    """Landmarks of the horizontally mirrored crop: x' = size - 1 - x, then point i takes point perm[i]."""
    pts = np.asarray(points, dtype=np.float32).copy()
    pts[:, 0] = (size - 1) - pts[:, 0]
    return pts[np.asarray(permutation)]


def protocol_norm(points: np.ndarray, scheme: Scheme, kind: str, box: Sequence[float] | None = None) -> float:
    """The normalising distance of a face, in the pixels of ``points``.

    * ``inter_ocular``: |p_a - p_b| between the outer eye corners (300-W, WFLW protocols; ibug68 36/45,
      wflw98 60/72)
    * ``inter_pupil``: distance between the eye centres (mean of each eye's points; wflw98 pupils 96/97)
    * ``box``: sqrt(w · h) of the face box, or of the landmarks' bounding box when none is given (AFLW)
    * ``diagonal``: sqrt(w² + h²) of that box (seed 000's accuracy threshold)
    """
    pts = np.asarray(points, dtype=np.float64)
    if kind == "inter_ocular":
        a, b = scheme.outer_eye_corners
        return float(np.linalg.norm(pts[a] - pts[b]))
    if kind == "inter_pupil":
        left = pts[list(scheme.left_eye)].mean(axis=0)
        right = pts[list(scheme.right_eye)].mean(axis=0)
        return float(np.linalg.norm(left - right))
    if kind in ("box", "diagonal"):
        if box is None:
            (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        else:
            x0, y0, x1, y1 = (float(v) for v in box)
        w, h = x1 - x0, y1 - y0
        return float(np.sqrt(w * h)) if kind == "box" else float(np.hypot(w, h))
    raise invalid("data.norm", kind, "unknown choice", f"one of {', '.join(map(repr, NORMS))}")
