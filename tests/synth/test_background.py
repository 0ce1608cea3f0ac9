import cv2
import numpy as np
import pytest

from zoo.synth.background import Backgrounds


def test_procedural_deterministic_and_varied():
    a, b = Backgrounds(image_size=32), Backgrounds(image_size=32)
    x, y = a.sample(np.random.default_rng(1)), b.sample(np.random.default_rng(1))
    np.testing.assert_array_equal(x, y)
    assert x.shape == (32, 32, 3) and x.dtype == np.float32
    imgs = [a.sample(np.random.default_rng(i)) for i in range(20)]
    assert np.std([im.mean() for im in imgs]) > 0.02


def test_folder_backgrounds(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"t{i}.png"), np.full((40, 50, 3), 60 * (i + 1), np.uint8))
    bg = Backgrounds("folder", tmp_path, image_size=24)
    out = bg.sample(np.random.default_rng(0))
    assert out.shape == (24, 24, 3)
    assert np.isclose(out, 60 / 255, atol=1e-3).all() or np.isclose(out, 120 / 255, atol=1e-3).all()


def test_bad_backgrounds(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}.*holds no images"):
        Backgrounds("folder", tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        Backgrounds("folder", tmp_path / "missing")
    with pytest.raises(ValueError, match="background.path"):
        Backgrounds("folder", None)
    with pytest.raises(ValueError, match="background.kind"):
        Backgrounds("plasma")
