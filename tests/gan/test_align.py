from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.gan.align import align_faces, similarity_transform
from zoo.gan.detectors import to_uint8


def _rot(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def test_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (68, 2))
    M = np.concatenate([2.5 * _rot(17), [[12.0], [-7.0]]], axis=1)
    dst = src @ M[:, :2].T + M[:, 2]
    assert np.allclose(similarity_transform(src, dst), M, atol=1e-9)


def test_align_undoes_a_known_similarity(G, samples):
    """Put a generated face into a larger canvas with a known similarity; aligning with the mean shape moved the
    same way must give back (nearly) the original 64-px face and the inverse transform."""
    import cv2

    face = to_uint8(samples[1][:1])[0]
    M = np.concatenate([3.0 * _rot(-20), [[60.0], [90.0]]], axis=1)
    canvas = cv2.warpAffine(face, M, (320, 320), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    lm = G.mean_landmarks.astype(np.float64) @ M[:, :2].T + M[:, 2]
    al = align_faces(canvas[None], lm[None], generator=G)
    assert al.crops.shape == (1, 3, 64, 64)
    Minv = cv2.invertAffineTransform(M)
    assert np.allclose(al.affines[0], Minv, atol=1e-4)
    assert np.allclose(al.landmarks[0], G.mean_landmarks, atol=1e-3)
    assert np.allclose(al.to_image(al.landmarks)[0], lm, atol=1e-3)
    orig = samples[1][:1]
    inner = (slice(None), slice(None), slice(8, 56), slice(8, 56))  # borders may be reflections
    err = (al.crops[inner] - orig[inner]).abs().mean().item()
    assert err < 0.06, err


def test_align_real_afw_faces_land_on_mean_shape(G, dlib_det):
    from conftest import shared_path
    from zoo.io.images import read_image
    from zoo.io.pts import read_pts

    root = shared_path("afw_68")
    pts = sorted(root.glob("*.pts"))[:8]
    ims = [read_image(p.with_suffix(".jpg")) for p in pts]
    lms = np.stack([read_pts(p) for p in pts])
    al = align_faces(ims, lms, generator=G)
    # dlib on the aligned crop (independent detector) agrees with the transformed annotation
    found = dlib_det(to_uint8(al.crops))
    iod = np.linalg.norm(al.landmarks[:, 36] - al.landmarks[:, 45], axis=1)
    nme = np.linalg.norm(found - al.landmarks, axis=2).mean(1) / iod
    assert np.median(nme) < 0.12, nme
    # and the annotation lands on the generator's mean shape (similarity residual only)
    res = np.linalg.norm(al.landmarks - G.mean_landmarks, axis=2).mean(1) / np.linalg.norm(G.mean_landmarks[36] - G.mean_landmarks[45])
    assert np.all(res < 0.25), res


def test_align_bad_input(G):
    with pytest.raises(ValueError, match="landmarks"):
        align_faces(np.zeros((2, 80, 80, 3), np.uint8), np.zeros((2, 5, 2)), generator=G)
    with pytest.raises(ValueError, match=r"images\[0\]"):
        align_faces([np.zeros((80, 80, 3), np.float32)], G.mean_landmarks[None], generator=G)
    with pytest.raises(ValueError, match="mean_landmarks"):
        align_faces(np.zeros((1, 80, 80, 3), np.uint8), G.mean_landmarks[None], generator=object())
