import numpy as np
import pytest

from zoo.schemes import get_scheme
from zoo.synth.builtin import builtin_model
from zoo.synth.camera import rotation_matrix
from zoo.synth.generator import FaceGenerator, GeneratorConfig

RIGHT_EYE, LEFT_EYE = list(range(36, 42)), list(range(42, 48))


@pytest.fixture(scope="module")
def gen():
    return FaceGenerator(builtin_model(), GeneratorConfig(image_size=96))


def _mean_face_params(gen, yaw=0.0, pitch=0.0, roll=0.0):
    p = gen.sample_params(0, 0, 0)
    p.update(shape=np.zeros_like(p["shape"]), color=np.zeros_like(p["color"]),
             expression=np.zeros_like(p["expression"]), yaw=yaw, pitch=pitch, roll=roll, identity=-1)
    p["light"] = gen.light_prior.mean.astype(np.float32)
    return p


def test_same_seed_same_sample_everywhere(gen):
    other = FaceGenerator(builtin_model(), GeneratorConfig(image_size=96), identity_cache=0)
    a, pa = gen(7, 3, 2)
    b, pb = other(7, 3, 2)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["landmarks"], b["landmarks"])
    np.testing.assert_array_equal(a["visible"], b["visible"])
    c, pc = gen(7, 3, 3)  # same identity, other image: other pose, same identity coefficients
    np.testing.assert_array_equal(pa["shape"], pc["shape"])
    assert pa["yaw"] != pc["yaw"] and not np.array_equal(a["image"], c["image"])
    d, pd = gen(7, 3, 2, stream=1)  # another split
    assert not np.array_equal(pa["shape"], pd["shape"])


def test_visible_landmarks_on_face_pixels(gen):
    import cv2

    for i in range(12):
        out, _ = gen(1, i, 0)
        mask = cv2.dilate(out["mask"].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        lm, vis = out["landmarks"], out["visible"]
        assert vis.sum() >= 10
        xy = np.rint(lm[vis]).astype(int)
        inside = (xy >= 0).all(1) & (xy < 96).all(1)
        assert inside.all()
        assert mask[xy[:, 1], xy[:, 0]].all()
        assert np.isclose(out["norm"], np.linalg.norm(lm[36] - lm[45]))


def test_profile_hides_far_eye(gen):
    # yaw +90: the nose turns to the image right, the subject's left side (eye 42-47) turns away
    out = gen.render(_mean_face_params(gen, yaw=90))
    assert not out["visible"][LEFT_EYE].any()
    assert out["visible"][RIGHT_EYE].sum() >= 4
    out = gen.render(_mean_face_params(gen, yaw=-90))
    assert not out["visible"][RIGHT_EYE].any()
    assert out["visible"][LEFT_EYE].sum() >= 4


def test_left_right_symmetry_at_yaw_0(gen):
    perm = np.array(get_scheme("ibug68").flip_permutation)
    out = gen.render(_mean_face_params(gen))
    lm, s = out["landmarks"], 96
    assert out["visible"].all()
    np.testing.assert_allclose(lm[:, 0], s - 1 - lm[perm, 0], atol=0.05)
    np.testing.assert_allclose(lm[:, 1], lm[perm, 1], atol=0.05)
    # the mirrored image matches too (the background is not symmetric: compare face pixels)
    img, mask = out["image"], out["mask"]
    both = mask & mask[:, ::-1]
    assert np.abs(img - img[:, ::-1])[both].mean() < 0.02


def test_contour_mode_moves_jaw_to_silhouette(gen):
    # framing "head": a fixed camera, so the jaw choice does not move the other points
    contour = FaceGenerator(builtin_model(), GeneratorConfig(image_size=96, framing="head"))
    fixed = FaceGenerator(builtin_model(), GeneratorConfig(image_size=96, landmark_mode="fixed", framing="head"))
    p = _mean_face_params(gen, yaw=40)
    c, f = contour.render(p), fixed.render(p)
    np.testing.assert_allclose(c["landmarks"][17:], f["landmarks"][17:])  # only the jaw differs
    # yaw +40 turns the subject's right cheek (jaw 0-7, image left) towards the camera and the left one away:
    # the turned-away jaw points (9-16) lie further out (image right) on the silhouette than the fixed vertices
    assert (c["landmarks"][10:16, 0] >= f["landmarks"][10:16, 0] - 1e-3).all()
    assert (c["landmarks"][10:16, 0] - f["landmarks"][10:16, 0]).max() > 1.0
    assert c["visible"][9:17].all()


def test_grayscale_and_bad_config():
    g = FaceGenerator(builtin_model(), GeneratorConfig(image_size=64, grayscale=True, supersample=2))
    out, _ = g(0, 0, 0)
    assert out["image"].shape == (64, 64, 1) and out["image"].dtype == np.float32
    assert 0 <= out["image"].min() and out["image"].max() <= 1
    with pytest.raises(ValueError, match="image_size"):
        GeneratorConfig(image_size=0)
    with pytest.raises(ValueError, match="yaw.*min"):
        GeneratorConfig(yaw=(30, -30))
    with pytest.raises(ValueError, match="landmark_mode"):
        GeneratorConfig(landmark_mode="silhouette")
    with pytest.raises(ValueError, match="framing"):
        GeneratorConfig(framing="tight")


def _pinhole(points_mm, camera):
    """Hand-written pinhole projection (camera on +z at distance D, focal f px, principal point at the centre)."""
    c = (camera.image_size - 1) / 2.0
    depth = camera.distance - points_mm[:, 2]
    return np.stack([c + camera.focal * points_mm[:, 0] / depth, c - camera.focal * points_mm[:, 1] / depth], 1)


@pytest.mark.parametrize("yaw", [0.0, 40.0, 80.0])
def test_normalising_distances(yaw):
    """norm, norm_3d, norm_box against a hand projection of the mean face's eye corners (fixed head camera),
    and the landmark framing scaling all three by one zoom."""
    model = builtin_model()
    head = FaceGenerator(model, GeneratorConfig(image_size=96, framing="head", landmark_mode="fixed"))
    framed = FaceGenerator(model, GeneratorConfig(image_size=96, landmark_mode="fixed"))  # no jaw re-pick
    out = head.render(_mean_face_params(head, yaw=yaw))
    idx = model.landmark_indices("ibug68")
    verts = model.mean_shape.astype(np.float64)
    centre = verts[idx[idx >= 0]].mean(0)
    rot = rotation_matrix(yaw, 0.0, 0.0).astype(np.float64)
    eyes = _pinhole((verts[idx[[36, 45]]] - centre) @ rot.T, head.camera)
    np.testing.assert_allclose(out["landmarks"][[36, 45]], eyes, atol=1e-3)
    assert out["norm"] == pytest.approx(np.linalg.norm(eyes[0] - eyes[1]), rel=1e-4)
    iod_mm = np.linalg.norm(verts[idx[36]] - verts[idx[45]])
    assert out["norm_3d"] == pytest.approx(iod_mm * head.camera.focal / head.camera.distance, rel=1e-5)
    lm = out["landmarks"][idx >= 0]
    assert out["norm_box"] == pytest.approx(np.sqrt(np.ptp(lm[:, 0]) * np.ptp(lm[:, 1])), rel=1e-5)
    # framing "landmarks": one similarity of the image plane, so every distance scales by the same zoom
    f = framed.render(_mean_face_params(framed, yaw=yaw))
    zoom = f["norm_3d"] / out["norm_3d"]
    assert f["norm"] == pytest.approx(zoom * out["norm"], rel=1e-4)
    assert f["norm_box"] == pytest.approx(zoom * out["norm_box"], rel=1e-4)
    box = f["landmarks"][idx >= 0]
    assert max(np.ptp(box[:, 0]), np.ptp(box[:, 1])) == pytest.approx(0.8 * 96, rel=1e-4)  # face_scale · S


@pytest.mark.parametrize("supersample,grayscale", [(1, False), (2, True)])
def test_image_only_render_gives_the_same_pixels(supersample, grayscale):
    """render(p, landmarks=False) (the identity task's shortcut) returns exactly the image and mask of render(p)."""
    g = FaceGenerator(builtin_model(), GeneratorConfig(image_size=40, supersample=supersample, grayscale=grayscale))
    for i in range(4):
        p = g.sample_params(3, i, i + 1)
        full, fast = g.render(p), g.render(p, landmarks=False)
        assert set(fast) == {"image", "mask"}
        np.testing.assert_array_equal(fast["image"], full["image"])
        np.testing.assert_array_equal(fast["mask"], full["mask"])
        assert fast["image"].dtype == np.float32 and fast["image"].flags.c_contiguous
