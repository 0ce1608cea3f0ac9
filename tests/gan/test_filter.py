from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.gan import load_detector
from zoo.gan.filter import REGIONS, LandmarkDisagreement, disagreement


def test_disagreement_hand_computed():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 64, (3, 68, 2))
    p[:, 36] = [10, 30]
    p[:, 45] = [50, 30]                       # inter-ocular distance 40
    q = p.copy()
    q[0] += [3, 4]                            # every point moved by 5 px -> 5 / 40
    q[1, 48:68] += [0, 8]                     # mouth only, 8 px: whole face sqrt(20 * 64 / 68) / 40
    res = disagreement(p, q)
    assert res["score"][0] == pytest.approx(0.125)
    assert res["score"][1] == pytest.approx(np.sqrt(20 * 64 / 68) / 40)
    assert res["score"][2] == 0
    assert res["regions"]["mouth"][1] == pytest.approx(0.2)
    assert res["regions"]["jaw"][1] == 0 and res["regions"]["eyes"][0] == pytest.approx(0.125)
    assert sorted(sum(REGIONS.values(), ())) == list(range(68))


def test_filter_keeps_photometric_rejects_geometric(samples, dlib_det):
    import cv2

    from zoo.gan import to_uint8

    x = samples[1][:16]
    # photometric only: brightness, contrast and a colour cast (no pixel moves)
    photo = (x * 0.8 + torch.tensor([0.15, 0.05, -0.1]).view(1, 3, 1, 1)).clamp(-1, 1)
    # geometric: vertical stretch by 18 % about the image centre plus a 3-px shift (landmarks move)
    ims = to_uint8(x)
    A = np.array([[1.0, 0, 3.0], [0, 1.18, -0.18 * 32]], np.float32)
    warped = np.stack([cv2.warpAffine(im, A, (64, 64), borderMode=cv2.BORDER_REFLECT) for im in ims])
    filt = LandmarkDisagreement(dlib_det, threshold=0.05)
    r_photo = filt(x, photo)
    r_geo = filt(ims, warped)
    assert r_photo["keep"].mean() >= 0.8, r_photo["score"]
    assert r_geo["keep"].mean() <= 0.2, r_geo["score"]
    assert np.median(r_geo["score"]) > 2 * np.median(r_photo["score"])
    # reusing the originals' landmarks gives the same verdicts
    again = filt(None, photo, original_landmarks=r_photo["landmarks_original"])
    assert np.array_equal(again["keep"], r_photo["keep"])


def test_filter_accepts_any_callable_and_checks_input():
    calls = []

    def fake(images):
        calls.append(images.shape)
        base = np.tile(np.linspace(0, 60, 68)[:, None], (1, 2)).astype(np.float32)
        return np.stack([base + (images[i].mean() > 100) * 10 for i in range(len(images))])

    filt = LandmarkDisagreement(fake, threshold=0.1)
    a = np.zeros((2, 64, 64, 3), np.uint8)
    b = a.copy()
    b[1] = 255
    res = filt(a, b)
    assert calls[0] == (2, 64, 64, 3) and list(res["keep"]) == [True, False]
    with pytest.raises(ValueError, match="threshold"):
        LandmarkDisagreement(fake, threshold=0)
    with pytest.raises(ValueError, match="threshold"):
        LandmarkDisagreement(fake, threshold=1.5)
    with pytest.raises(ValueError, match="edited"):
        filt(a, b[:1])


def test_unknown_detector_lists_valid_names():
    with pytest.raises(ValueError, match="'dlib'"):
        load_detector("mediapipe")
    with pytest.raises(ValueError, match="zoo.models.gan_detector"):
        load_detector("zoo:/tmp/x.ckpt")
