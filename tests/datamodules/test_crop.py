"""Crop geometry against hand-computed pixels, the area-reduced warp against a direct warp, flips."""
import cv2
import numpy as np
import pytest

from zoo.datamodules.crop import (ARCFACE_TEMPLATE_112, CropGeometry, align_matrix, crop_matrix, face_square,
                                  five_points, flip_landmarks, matrix_scale, protocol_norm, similarity_fit,
                                  transform_points, warp_crop)
from zoo.schemes import get_scheme


def test_face_square_hand_computed():
    pts = np.array([[10, 20], [50, 40], [30, 60]], np.float32)  # box 10..50 x 20..60
    assert face_square(pts, scale=1.0) == (30.0, 40.0, 40.0)
    assert face_square(pts, box=[0, 0, 20, 10], scale=1.25) == (10.0, 5.0, 25.0)
    with pytest.raises(ValueError, match="zero size"):
        face_square(np.zeros((3, 2)))


def test_crop_matrix_hand_computed():
    # square centred (30, 40), side 40, crop 20 px -> 2 source px per crop px; crop centre (20 - 1) / 2 = 9.5
    m = crop_matrix((30, 40), 40, 20)
    pts = np.array([[10, 20], [30, 40], [50, 60], [11, 20]], np.float32)
    np.testing.assert_allclose(transform_points(m, pts), [[-0.5, -0.5], [9.5, 9.5], [19.5, 19.5], [0, -0.5]], atol=1e-6)
    assert matrix_scale(m) == pytest.approx(0.5)
    # rotation by +90°: a point 20 px right of the centre goes 10 crop px up (counter-clockwise on screen)
    m = crop_matrix((30, 40), 40, 20, CropGeometry(angle=np.pi / 2))
    np.testing.assert_allclose(transform_points(m, [[50, 40], [30, 20]]), [[9.5, -0.5], [-0.5, 9.5]], atol=1e-5)
    # same sense as cv2.getRotationMatrix2D (positive = counter-clockwise), at unit scale
    ref = cv2.getRotationMatrix2D((9.5, 9.5), 30.0, 1.0)
    mine = crop_matrix((9.5, 9.5), 20, 20, CropGeometry(angle=np.deg2rad(30)))
    np.testing.assert_allclose(mine, ref, atol=1e-9)
    # shift by a quarter of the side to the right: (40, 40) becomes the crop centre
    m = crop_matrix((30, 40), 40, 20, CropGeometry(shift=(0.25, 0.0)))
    np.testing.assert_allclose(transform_points(m, [[40, 40]]), [[9.5, 9.5]], atol=1e-6)
    # zoom 2: 4 source px per crop px
    m = crop_matrix((30, 40), 40, 20, CropGeometry(zoom=2.0))
    np.testing.assert_allclose(transform_points(m, [[50, 40]]), [[14.5, 9.5]], atol=1e-6)
    # flip: x' = 20 - 1 - x
    m = crop_matrix((30, 40), 40, 20, CropGeometry(flip=True))
    np.testing.assert_allclose(transform_points(m, [[10, 20], [11, 40]]), [[19.5, -0.5], [19, 9.5]], atol=1e-6)


def test_bright_pixel_lands_on_computed_crop_pixel():
    img = np.zeros((120, 160), np.uint8)
    img[70, 95] = 255  # source pixel (x=95, y=70)
    for angle in (0.0, np.pi / 2, -np.pi / 2, np.pi):  # unit scale, quarter turns: exact pixel hits
        m = crop_matrix((79.5, 59.5), 64, 64, CropGeometry(angle=angle))  # crop pixel centres on source centres
        crop = warp_crop(img, m, 64, interpolation="linear")
        u, v = transform_points(m, [[95, 70]])[0]
        assert u == pytest.approx(round(u), abs=1e-6) and v == pytest.approx(round(v), abs=1e-6)
        yx = np.unravel_index(np.argmax(crop), crop.shape)
        assert (yx[1], yx[0]) == (round(u), round(v)) and crop.max() == 255
    # hand-computed for 90°: (95, 70) is 15.5 right, 10.5 below the centre -> 15.5 up, 10.5 right of 31.5
    m = crop_matrix((79.5, 59.5), 64, 64, CropGeometry(angle=np.pi / 2))
    np.testing.assert_allclose(transform_points(m, [[95, 70]]), [[42, 16]], atol=1e-5)


def _blob(h, w, cx, cy, sigma):
    y, x = np.mgrid[0:h, 0:w]
    return (255 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))).astype(np.float32)


@pytest.mark.parametrize("angle, flip", [(0.0, False), (0.4, False), (-0.9, True)])
def test_area_warp_matches_direct_warp_on_smooth_image(angle, flip):
    """Downscaling x3.3: the area-reduced path agrees with a plain bilinear warp on a smooth image and the
    blob's intensity centroid lands on the transformed centre."""
    img = _blob(300, 360, 171.3, 142.6, 14.0)
    m = crop_matrix((180.0, 150.0), 320, 96, CropGeometry(angle=angle, shift=(0.05, -0.03), flip=flip))
    area = warp_crop(img, m, 96, interpolation="area")
    direct = cv2.warpAffine(img, m, (96, 96), flags=cv2.INTER_LINEAR)
    assert np.abs(area - direct).max() < 0.02 * 255
    y, x = np.mgrid[0:96, 0:96]
    centroid = np.array([(area * x).sum(), (area * y).sum()]) / area.sum()
    np.testing.assert_allclose(centroid, transform_points(m, [[171.3, 142.6]])[0], atol=0.05)


def test_area_warp_antialiases_and_handles_outside():
    stripes = np.zeros((400, 400), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: mean 127.5, aliasing under plain bilinear sampling at x4.2
    m = crop_matrix((200.0, 200.0), 400, 96)
    area = warp_crop(stripes, m, 96, interpolation="area")[10:-10, 10:-10]
    assert abs(area.mean() - 127.5) < 3 and area.std() < 10
    far = crop_matrix((2000.0, 2000.0), 100, 32)
    assert (warp_crop(stripes, far, 32) == 0).all() and warp_crop(stripes[..., None].repeat(3, 2), far, 32).shape == (32, 32, 3)


def test_flip_landmarks_twice_is_identity_and_matches_mirrored_dots():
    scheme = get_scheme("ibug68")
    rng = np.random.default_rng(0)
    size = 96
    # a face-like layout: right-eye outer corner (36) on the image left, left-eye outer corner (45) on the right
    pts = rng.uniform(5, size - 6, size=(68, 2)).round().astype(np.float32)
    pts[36], pts[45] = (20, 40), (75, 40)
    twice = flip_landmarks(flip_landmarks(pts, size, scheme.flip_permutation), size, scheme.flip_permutation)
    np.testing.assert_allclose(twice, pts)
    img = np.zeros((size, size), np.uint8)
    for x, y in pts:
        img[int(y), int(x)] = 255
    mirrored = np.fliplr(img)  # independent mirror of the pixels
    flipped = flip_landmarks(pts, size, scheme.flip_permutation)
    for i, (x, y) in enumerate(flipped):
        assert mirrored[int(y), int(x)] == 255, i
        j = scheme.flip_permutation[i]
        assert (x, y) == (size - 1 - pts[j, 0], pts[j, 1])
    # point 36 still the subject's right eye corner: on the image left after the flip
    assert flipped[36, 0] < flipped[45, 0]


def test_protocol_norms_hand_computed():
    s = get_scheme("ibug68")
    pts = np.zeros((68, 2))
    pts[36], pts[45] = (10, 10), (40, 50)  # 30, 40 -> 50
    pts[37:42] = (10, 10)
    pts[42:48] = (40, 50)
    pts[0], pts[16] = (0, 0), (80, 20)
    assert protocol_norm(pts, s, "inter_ocular") == pytest.approx(50)
    assert protocol_norm(pts, s, "inter_pupil") == pytest.approx(50)
    assert protocol_norm(pts, s, "box") == pytest.approx(np.sqrt(80 * 50))
    assert protocol_norm(pts, s, "diagonal", box=[0, 0, 30, 40]) == pytest.approx(50)
    with pytest.raises(ValueError, match="data.norm=.eyes. is invalid: unknown choice"):
        protocol_norm(pts, s, "eyes")


def _similarity(scale, angle, t):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, t[0]], [scale * s, scale * c, t[1]]])


def test_similarity_fit_recovers_a_known_similarity_and_matches_brute_force():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    true = _similarity(0.7, 0.4, (12.0, -3.0))
    np.testing.assert_allclose(similarity_fit(src, transform_points(true, src).astype(np.float64)), true, atol=1e-4)
    # noisy points: the closed form equals a brute-force numerical least-squares search over (a, b, tx, ty),
    # the similarity [[a, -b, tx], [b, a, ty]]
    dst = transform_points(true, src) + rng.normal(0, 3, (5, 2))
    from scipy.optimize import least_squares

    def resid(p):
        m = np.array([[p[0], -p[1], p[2]], [p[1], p[0], p[3]]])
        return (src @ m[:, :2].T + m[:, 2] - dst).ravel()
    best = least_squares(resid, np.array([1.0, 0.0, 0.0, 0.0])).x
    fit = similarity_fit(src, dst)
    np.testing.assert_allclose(fit, [[best[0], -best[1], best[2]], [best[1], best[0], best[3]]], atol=1e-6)
    assert np.linalg.det(fit[:, :2]) > 0  # a rotation, never a reflection
    with pytest.raises(ValueError, match="coincide"):
        similarity_fit(np.ones((5, 2)), dst)
    with pytest.raises(ValueError, match="NaN or inf"):
        similarity_fit(np.where(np.arange(10).reshape(5, 2) == 3, np.nan, src), dst)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        similarity_fit(src[:, :1], dst[:, :1])


def test_align_matrix_puts_the_five_points_on_the_template():
    tpl96 = (ARCFACE_TEMPLATE_112 + 0.5) * 96 / 112 - 0.5
    pts68 = np.zeros((68, 2))
    src5 = transform_points(cv2.invertAffineTransform(_similarity(0.5, 0.3, (20.0, 10.0))), tpl96).astype(np.float64)
    pts68[36:42], pts68[42:48], pts68[30], pts68[48], pts68[54] = src5[0], src5[1], src5[2], src5[3], src5[4]
    np.testing.assert_allclose(five_points(pts68), src5)
    m = align_matrix(pts68, 96)
    np.testing.assert_allclose(transform_points(m, src5), tpl96, atol=1e-3)
    # a flip about the crop centre mirrors the template points: x' = 95 - x
    mf = align_matrix(pts68, 96, CropGeometry(flip=True))
    np.testing.assert_allclose(transform_points(mf, src5)[:, 0], 95 - tpl96[:, 0], atol=1e-3)
    # a rotated face: a dot on the left-eye centre lands on the template's left eye in the warped crop
    img = np.zeros((200, 200), np.uint8)
    eye = np.round(src5[0]).astype(int)
    img[eye[1] - 1:eye[1] + 2, eye[0] - 1:eye[0] + 2] = 255
    crop = warp_crop(img, align_matrix(pts68, 96), 96, "linear")
    y, x = np.unravel_index(np.argmax(crop), crop.shape)
    assert abs(x - tpl96[0, 0]) <= 1.5 and abs(y - tpl96[0, 1]) <= 1.5
    with pytest.raises(ValueError, match="68 iBUG landmarks or 5 points"):
        five_points(np.zeros((21, 2)))
