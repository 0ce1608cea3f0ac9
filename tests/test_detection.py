"""zoo.detection: face box detectors from installed wheels, matching detections to annotated faces, and the
least-squares box-to-crop map (checked against hand-computed solutions)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from zoo.datamodules.crop import face_square
from zoo.detection import (BoxToCrop, HaarFaceDetector, box_iou, dlib_available, fit_coef, landmark_box,
                           load_face_detector, match_face)

needs_dlib = pytest.mark.skipif(not dlib_available(), reason="dlib-bin / face-recognition-models not installed "
                                                             "(pip install dlib-bin face-recognition-models)")


def _squares(boxes, t):
    """Crop squares (cx, cy, side) from boxes and normalised targets t = ((cx - bx)/s, (cy - by)/s, side/s)."""
    b = np.asarray(boxes, float)
    c = 0.5 * (b[:, :2] + b[:, 2:])
    s = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    t = np.asarray(t, float)
    return np.concatenate([c + t[:, :2] * s[:, None], t[:, 2:] * s[:, None]], axis=1)


def test_fit_coef_hand_computed():
    # boxes: 4x1 (s = 2, a = (w - h)/s = 1.5), 1x4 (s = 2, a = -1.5), 2x2 (s = 2, a = 0)
    boxes = [[0, 0, 4, 1], [10, 10, 11, 14], [0, 0, 2, 2]]
    t = [[0.5, 0.0, 3.0], [0.0, 0.5, 2.0], [0.25, 0.25, 3.0]]
    coef, res = fit_coef(np.array(boxes), _squares(boxes, t))
    # the aspect column (1.5, -1.5, 0) is orthogonal to the ones column: p0 = mean(t), p1 = sum(a t) / sum(a^2)
    assert np.allclose(coef[0], [0.25, 0.25, 8 / 3])
    assert np.allclose(coef[1], [1 / 6, -1 / 6, 1 / 3])
    # residuals: t_i - p0 - a_i p1; e.g. face C (a = 0): t_C - p0
    assert np.allclose(res[2], [0.0, 0.0, 1 / 3])
    m = BoxToCrop(coef, crop_scale=1.25)
    # a 9x4 box at the origin: centre (4.5, 2), s = 6, w - h = 5
    sq = m.squares(np.array([[0, 0, 9, 4]]))[0]
    assert np.allclose(sq, [4.5 + 6 * 0.25 + 5 / 6, 2 + 6 * 0.25 - 5 / 6, 6 * 8 / 3 + 5 / 3])
    # face_boxes: the box whose 1.25-square (zoo.datamodules.crop.face_square) is that square
    fb = m.face_boxes(np.array([[0, 0, 9, 4]]))[0]
    assert np.allclose(face_square(None, fb, 1.25), sq)


def test_fit_coef_square_boxes_is_the_mean_and_equivariant():
    rng = np.random.default_rng(0)
    n = 50
    side = rng.uniform(40, 200, n)
    x0, y0 = rng.uniform(0, 500, n), rng.uniform(0, 500, n)
    jitter = 1 + rng.uniform(-0.015, 0.015, n)  # dlib's pyramid rounding: boxes a pixel off square
    boxes = np.stack([x0, y0, x0 + side * jitter, y0 + side], axis=1)
    t = np.stack([rng.normal(0.0, 0.05, n), rng.normal(0.1, 0.05, n), rng.normal(1.3, 0.1, n)], axis=1)
    coef, _ = fit_coef(boxes, _squares(boxes, t))
    # aspect hardly varies: its singular value is dropped (rcond 5 %), p1 ~ 0 and p0 ~ the plain mean of t
    assert np.abs(coef[1]).max() < 0.05
    assert np.allclose(coef[0], t.mean(0), atol=2e-3)
    m = BoxToCrop(coef, 1.25)
    # translation and scaling of the photo move the square with it
    b = np.array([[100.0, 50.0, 180.0, 130.0]])
    base = m.squares(b)[0]
    moved = m.squares(b * 3 + np.array([7, -5, 7, -5]))[0]
    assert np.allclose(moved, [base[0] * 3 + 7, base[1] * 3 - 5, base[2] * 3])


def test_box_iou_and_match_face():
    assert np.allclose(box_iou(np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6]]), np.array([0, 0, 2, 2])),
                       [1.0, 1 / 7, 0.0])
    pts = np.array([[10, 10], [50, 10], [30, 60], [10, 50]], float)  # landmark box (10, 10, 50, 60)
    assert np.allclose(landmark_box(pts), [10, 10, 50, 60])
    boxes = np.array([[200, 200, 260, 260],    # another face
                      [12, 15, 48, 58],        # this face
                      [0, 0, 100, 100]])       # centre (50, 50) inside but IoU 2000/10000 = 0.2
    assert match_face(boxes, pts) == 1
    assert match_face(boxes[[0, 2]], pts) == -1          # IoU 0.2 < 0.25
    assert match_face(boxes[[0, 2]], pts, min_iou=0.19) == 1
    assert match_face(np.zeros((0, 4)), pts) == -1


def test_box_to_crop_json_round_trip_and_bad_files(tmp_path):
    m = BoxToCrop(np.arange(6.0).reshape(2, 3), 1.25, {"name": "dlib", "upsample": 0}, {"faces": 3})
    p = m.save(tmp_path / "map.json")
    back = BoxToCrop.load(p)
    assert np.array_equal(back.coef, m.coef) and back.crop_scale == 1.25 and back.detector == m.detector
    assert "formula" in json.loads(p.read_text())
    (tmp_path / "bad.json").write_text('{"coef": [1, 2]}')
    with pytest.raises(ValueError, match="bad.json"):
        BoxToCrop.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="missing.json"):
        BoxToCrop.load(tmp_path / "missing.json")
    class Fake:
        def __init__(self, upsample):
            self.upsample = upsample

        def settings(self):
            return {"name": "dlib", "upsample": self.upsample}

    back.check_compatible(Fake(0), 1.25)
    with pytest.raises(ValueError, match="fitted with detector .*'upsample': 0.*not .*'upsample': 1"):
        back.check_compatible(Fake(1), 1.25)
    with pytest.raises(ValueError, match="crop_scale 1.25.*1.4"):
        back.check_compatible(Fake(0), 1.4)
    with pytest.raises(ValueError, match="zero or negative"):
        back.squares(np.array([[5, 5, 5, 9]]))


def test_load_face_detector_names():
    with pytest.raises(ValueError, match="detector='retina' is invalid.*'dlib'"):
        load_face_detector("retina")
    fn = lambda im: (np.zeros((0, 4)), np.zeros(0))  # noqa: E731
    assert load_face_detector(fn) is fn


def test_opencv_detector_available_or_says_why():
    if hasattr(cv2, "CascadeClassifier") and getattr(getattr(cv2, "data", None), "haarcascades", None):
        import os

        if os.path.isfile(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")):
            det = load_face_detector("opencv")
            boxes, scores = det(np.full((120, 120), 128, np.uint8))
            assert boxes.shape[1] == 4 and len(boxes) == len(scores)
            return
    with pytest.raises(ValueError, match="detector 'opencv'.*(opencv-contrib|OpenCV 4)"):
        HaarFaceDetector()


@needs_dlib
def test_hog_detector_on_a_photo_and_max_side(shared_data):
    from conftest import shared_path
    from zoo.io.folders import read_pts_folder
    from zoo.io.images import read_image

    rec = read_pts_folder(shared_path("afw_68"), num_points=68)[0]
    img = read_image(rec.image)
    det = load_face_detector("dlib")
    boxes, scores = det(img)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and (np.diff(scores) <= 0).all()
    assert match_face(boxes, rec.landmarks) >= 0
    # the same photo at twice the size, shrunk back for detection by max_side: boxes come back in its pixels
    big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    boxes2, _ = load_face_detector("dlib", max_side=max(img.shape[:2]))(big)
    j = match_face(boxes2, rec.landmarks * 2 + 0.5)
    assert j >= 0
    i = match_face(boxes, rec.landmarks)
    assert np.allclose(boxes2[j], (boxes[i] + 0.5) * 2 - 0.5, atol=3.0)
    assert len(det(np.full((200, 200, 3), 127, np.uint8))[0]) == 0


def test_import_needs_no_lightning_hydra_wandb():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    code = ("import sys, json, zoo.detection; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'lightning', 'pytorch_lightning', 'hydra', 'wandb'})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
