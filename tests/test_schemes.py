"""Landmark schemes: the flip permutations are involutions and mirror real 300-W faces onto themselves."""
import numpy as np
import pytest

from conftest import shared_path
from zoo.io.pts import read_pts
from zoo.schemes import SCHEMES, get_scheme


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_flip_permutation_is_an_involution(name):
    s = get_scheme(name)
    perm = np.asarray(s.flip_permutation)
    assert sorted(perm.tolist()) == list(range(s.num_landmarks))
    assert (perm[perm] == np.arange(s.num_landmarks)).all()
    a, b = s.outer_eye_corners
    assert perm[a] == b


def test_ibug68_permutation_mirrors_the_mean_helen_shape():
    # independent reference: real annotations. The mean face mirrored about the nose bridge and re-ordered with
    # the permutation must fall back onto itself (without the permutation it is far off).
    files = sorted(shared_path("helen_train_68").glob("*.pts"))
    pts = np.stack([read_pts(f, num_points=68) for f in files])
    io = np.linalg.norm(pts[:, 36] - pts[:, 45], axis=1)[:, None]
    x = (pts[..., 0] - pts[:, 27:31, 0].mean(1, keepdims=True)) / io
    y = (pts[..., 1] - pts[:, 27:31, 1].mean(1, keepdims=True)) / io
    mx, my = x.mean(0), y.mean(0)
    perm = np.asarray(get_scheme("ibug68").flip_permutation)
    err = np.hypot(mx + mx[perm], my - my[perm])
    assert err.max() < 0.1, err.argmax()
    assert np.hypot(mx + mx, 0).mean() > 0.3  # the check would fail for the identity permutation


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(ValueError, match="ibug68"):
        get_scheme("aflw19")
