from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.gan import to_uint8
from zoo.gan.directions import ATTRIBUTES, Directions, edit, fit_directions
from zoo.gan.inversion import Latent

GEOMETRIC = ["yaw", "mouth_open", "smile"]


@pytest.fixture(scope="module")
def dirs(G, dlib_det, tmp_path_factory):
    # small fit (about 15 s on one core); the default n_samples=3000 is what generate.py uses
    return fit_directions(G, list(ATTRIBUTES), n_samples=800, seed=0, cache_dir=tmp_path_factory.mktemp("dirs"))


def test_labelling_functions_hand_computed():
    x = -torch.ones(2, 3, 64, 64)
    x[1, 0] = 1.0                                   # second image: pure red
    assert np.allclose(ATTRIBUTES["brightness"](x), [0.0, 0.299])
    assert np.allclose(ATTRIBUTES["colour_temperature"](x), [0.0, 1.0])
    p = np.zeros((1, 68, 2))
    p[0, 0], p[0, 16], p[0, 30] = [10, 30], [50, 30], [36, 40]       # nose 6 px right of centre, width 40
    p[0, 36], p[0, 45] = [20, 28], [40, 28]                          # inter-ocular 20
    p[0, 62], p[0, 66], p[0, 48], p[0, 54] = [30, 50], [30, 54], [22, 52], [38, 52]
    assert ATTRIBUTES["yaw"](None, p) == pytest.approx([0.15])
    assert ATTRIBUTES["mouth_open"](None, p) == pytest.approx([0.2])
    assert ATTRIBUTES["smile"](None, p) == pytest.approx([0.8])


def test_directions_are_separable_and_unit(dirs):
    assert dirs.names == list(ATTRIBUTES)
    assert np.allclose(np.linalg.norm(dirs.normals, axis=1), 1)
    for n in dirs.names:
        assert dirs.accuracy[n] > 0.7, (n, dirs.accuracy)   # chance is 0.5; ~100 held-out samples each


def test_each_direction_moves_its_attribute_monotonically(G, dirs, dlib_det):
    """On held-out z (another seed), the mean attribute score rises with α for every direction."""
    z = G.sample_z(24, seed=999)
    alphas = [-3.0, -1.5, 0.0, 1.5, 3.0]
    for name in dirs.names:
        means = []
        for a in alphas:
            x = edit(G, z, dirs[name], a)
            lm = dlib_det(to_uint8(x)) if ATTRIBUTES[name].needs_landmarks else None
            means.append(ATTRIBUTES[name](x, lm).mean())
        assert np.all(np.diff(means) > 0), (name, means)


def test_conditional_direction_is_orthogonal_to_conditions(dirs):
    c = dirs.conditional("brightness", condition=["colour_temperature", "yaw"]).numpy()
    assert np.linalg.norm(c) == pytest.approx(1, abs=1e-5)
    for other in ("colour_temperature", "yaw"):
        assert abs(c @ dirs[other].numpy()) < 1e-5
    # still mostly the brightness direction
    assert c @ dirs["brightness"].numpy() > 0.5
    assert torch.allclose(dirs.conditional("smile"), dirs["smile"])


def test_save_load_roundtrip_and_generator_check(dirs, G, tmp_path):
    p = dirs.save(tmp_path / "d.npz")
    d2 = Directions.load(p, generator=G)
    assert d2.names == dirs.names and np.array_equal(d2.normals, dirs.normals) and d2.accuracy == dirs.accuracy

    class Other:
        weights_hash, name = "0" * 16, "other"

    with pytest.raises(ValueError, match="refit"):
        Directions.load(p, generator=Other())
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.npz"):
        Directions.load(tmp_path / "junk.npz")


def test_bad_names_and_alpha(G, dirs):
    with pytest.raises(ValueError, match="'smile'"):
        fit_directions(G, ["beard"], n_samples=50, cache_dir=False)
    with pytest.raises(ValueError, match="'brightness'"):
        dirs["beard"]
    with pytest.raises(ValueError, match="condition"):
        dirs.conditional("smile", condition=["beard"])
    z = torch.zeros(2, 100)
    with pytest.raises(ValueError, match="alpha"):
        edit(G, z, dirs["smile"], 11.0)
    with pytest.raises(ValueError, match="alpha"):
        edit(G, z, dirs["smile"], float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        edit(G, z, dirs["smile"], [1.0, 2.0, 3.0])
    # edit of a Latent with a residual equals the decode of the moved z with that residual
    lat = Latent(z, torch.randn(2, 512, 4, 4) * 0.1)
    with torch.no_grad():
        ref = G.render(G.features(z + 2 * dirs["smile"]) + lat.residual)
    assert torch.allclose(edit(G, lat, dirs["smile"], 2.0), ref, atol=1e-6)
