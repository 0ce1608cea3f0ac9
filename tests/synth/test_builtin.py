import numpy as np
import pytest

from zoo.schemes import get_scheme
from zoo.synth.builtin import builtin_model, similarity_align
from zoo.synth.loaders import load_model
from zoo.synth.morphable import MorphableModel


@pytest.fixture(scope="module")
def model():
    return builtin_model()


def test_bases_orthonormal_and_std_meaning(model):
    for b in (model.shape_basis, model.color_basis):
        np.testing.assert_allclose(b.T @ b, np.eye(b.shape[1]), atol=1e-4)
    # coefficient e_i (one std) moves the mesh by exactly std_i in the flattened norm
    for i in (0, 7, model.num_shape - 1):
        c = np.zeros(model.num_shape, np.float32)
        c[i] = 1
        d = model.shape_instance(c) - model.mean_shape
        assert np.linalg.norm(d) == pytest.approx(model.shape_std[i], rel=1e-3)
    np.testing.assert_allclose(model.shape_instance(np.zeros(model.num_shape)), model.mean_shape)
    assert (np.diff(model.shape_std) <= 1e-4).all()  # sorted, largest first


def test_mean_face_is_mirror_symmetric(model):
    perm = np.array(get_scheme("ibug68").flip_permutation)
    lm = model.mean_shape[model.landmark_indices("ibug68")]
    np.testing.assert_allclose(lm[:, 0], -lm[perm, 0], atol=1e-3)
    np.testing.assert_allclose(lm[:, 1:], lm[perm, 1:], atol=1e-3)


def test_facial_geometry_plausible(model):
    lm = model.mean_shape[model.landmark_indices("ibug68")]
    iod = np.linalg.norm(lm[36] - lm[45])
    assert 80 < iod < 105  # adult outer-eye-corner distance, mm
    assert lm[30, 2] > lm[27, 2] > lm[39, 2]  # nose tip in front of the bridge in front of the eye corners
    assert lm[8, 1] < lm[57, 1] < lm[51, 1] < lm[33, 1] < lm[30, 1] < lm[27, 1] < lm[19, 1]  # chin .. brows order
    # symmetric random faces: the GP kernel is 90 % mirror-symmetric
    s, _ = model.sample_identity(np.random.default_rng(0))
    v = model.shape_instance(s)[model.landmark_indices("ibug68")]
    perm = np.array(get_scheme("ibug68").flip_permutation)
    asym = np.abs(v[:, 0] + v[perm, 0]).mean()
    assert asym < 0.5 * np.abs(v[:, 0]).mean()


def test_sampling_expression_and_load_model(model):
    rng = np.random.default_rng(0)
    e = np.stack([model.sample_expression(rng) for _ in range(100)])
    assert (e[:, model.expression_nonnegative] >= 0).all()
    assert load_model("builtin") is model
    with pytest.raises(ValueError, match="unknown morphable model 'nope'"):
        load_model("nope")
    with pytest.raises(ValueError, match="model_path"):
        load_model("sfm", None)


def test_model_validation_errors(model):
    kw = dict(name="x", mean_shape=model.mean_shape, shape_basis=model.shape_basis, shape_std=model.shape_std,
              mean_color=model.mean_color, color_basis=model.color_basis, color_std=model.color_std,
              expression_basis=model.expression_basis, expression_std=model.expression_std, triangles=model.triangles)
    with pytest.raises(ValueError, match="shape std"):
        MorphableModel(**{**kw, "shape_std": model.shape_std[:-1]})
    with pytest.raises(ValueError, match="triangle vertex indices"):
        MorphableModel(**{**kw, "triangles": model.triangles + 10 ** 6})
    with pytest.raises(ValueError, match="68 vertex indices"):
        MorphableModel(**kw, landmarks={"ibug68": np.arange(10)})


def test_similarity_align_recovers_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    dst = 2.5 * src @ q.T + [1, 2, 3]
    s, r, t = similarity_align(src, dst)
    assert s == pytest.approx(2.5)
    np.testing.assert_allclose(r, q, atol=1e-8)
    np.testing.assert_allclose(t, [1, 2, 3], atol=1e-8)


def test_build_is_deterministic(model):
    again = builtin_model.__wrapped__()  # bypass the per-process cache
    np.testing.assert_array_equal(again.mean_shape, model.mean_shape)
    np.testing.assert_array_equal(again.shape_basis, model.shape_basis)
    np.testing.assert_array_equal(again.mean_color, model.mean_color)
    np.testing.assert_array_equal(again.landmark_indices("ibug68"), model.landmark_indices("ibug68"))
