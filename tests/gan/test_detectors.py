from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.gan import available_detectors, calibrate_generator, load_detector, register_detector, to_uint8


def test_to_uint8_maps_range_and_layout():
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    u = to_uint8(x)
    assert u.shape == (1, 2, 2, 3) and u.dtype == np.uint8 and tuple(u[0, 0, 0]) == (0, 128, 255)
    assert to_uint8(u) is not None and np.array_equal(to_uint8(u), u)
    with pytest.raises(ValueError, match="images"):
        to_uint8(np.zeros((2, 5, 5), np.float32))


def test_dlib_fixed_box_agrees_with_hog_on_generated_faces(samples, dlib_det):
    """Where HOG finds the face, the fixed-box landmarks are close to the HOG-box ones (the fixed box is the mean
    HOG box): median disagreement below dlib's own photometric noise level x 3."""
    from zoo.gan.filter import disagreement

    x = samples[1][:24]
    a = dlib_det(x)
    found = dlib_det.last_found.copy()
    b = load_detector("dlib:fixed")(x)
    assert found.mean() > 0.5
    s = disagreement(a[found], b[found])["score"]
    assert np.median(s) < 0.05, s


def test_registry_and_calibrate_with_a_callable(G):
    shape = np.tile(np.arange(68, dtype=np.float32)[:, None], (1, 2))

    def factory(arg, **kw):
        return lambda ims: np.repeat(shape[None] + float(arg or 0), len(ims), 0)

    register_detector("const_test", factory, overwrite=True)
    assert "const_test" in available_detectors()
    det = load_detector("const_test:2")
    assert np.array_equal(det(np.zeros((3, 8, 8, 3), np.uint8))[1], shape + 2)
    old = G.mean_landmarks
    try:
        mean = calibrate_generator(G, det, n=4, batch_size=2)
        assert np.allclose(mean, shape + 2) and G.mean_landmarks is mean
    finally:
        G.mean_landmarks = old
    with pytest.raises(ValueError, match="':'"):
        register_detector("a:b", factory)
