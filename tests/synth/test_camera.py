import math

import numpy as np
import pytest

from zoo.synth.camera import Camera, PoseRange, rotation_matrix


def test_rotation_conventions_hand_computed():
    # yaw +90: the nose (+z) turns to the image right (+x)
    np.testing.assert_allclose(rotation_matrix(90, 0, 0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    # pitch +90: the nose turns down (-y)
    np.testing.assert_allclose(rotation_matrix(0, 90, 0) @ [0, 0, 1], [0, -1, 0], atol=1e-12)
    # roll +90: +x goes to +y (counter-clockwise with y up)
    np.testing.assert_allclose(rotation_matrix(0, 0, 90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    r = rotation_matrix(33, -12, 7)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert math.isclose(np.linalg.det(r), 1.0)


def test_pinhole_projection_hand_computed():
    cam = Camera(image_size=101, focal=100.0, distance=1000.0)
    uv, depth = cam.project(np.array([[10.0, 20.0, 0.0], [0.0, 0.0, 500.0], [-50.0, 0.0, -1000.0]]))
    # u = 50 + f x / (D - z), v = 50 - f y / (D - z)
    np.testing.assert_allclose(uv, [[51.0, 48.0], [50.0, 50.0], [50.0 - 100 * 50 / 2000, 50.0]])
    np.testing.assert_allclose(depth, [1000.0, 500.0, 2000.0])


def test_framing_maps_extent_to_fraction():
    cam = Camera.framing(image_size=128, extent_mm=150.0, face_scale=0.5, distance=1000.0)
    uv, _ = cam.project(np.array([[-75.0, 0, 0], [75.0, 0, 0]]))
    assert math.isclose(uv[1, 0] - uv[0, 0], 64.0, rel_tol=1e-9)


def test_pose_range_bad_input():
    with pytest.raises(ValueError, match=r"pose.yaw=\[10, -10\] is invalid: min > max"):
        PoseRange(yaw=(10, -10))
    with pytest.raises(ValueError, match="pitch"):
        PoseRange(pitch=(0, 400))
    with pytest.raises(ValueError, match="image_size"):
        Camera(image_size=0, focal=1.0)
    with pytest.raises(ValueError, match="image_size"):
        Camera.framing(image_size=0, extent_mm=100.0)


def test_pose_sampling_in_range():
    pr = PoseRange(yaw=(-35, 35), pitch=(0, 0), roll=(-1, 1))
    rng = np.random.default_rng(0)
    poses = np.array([pr.sample(rng) for _ in range(500)])
    assert poses[:, 0].min() >= -35 and poses[:, 0].max() <= 35 and poses[:, 0].max() > 30
    assert (poses[:, 1] == 0).all()
