from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.gan import to_uint8
from zoo.gan.directions import Directions
from zoo.gan.plots import KEPT, REJECTED, direction_sweep, to_figure, verdict_grid


def test_verdict_grid_frames_and_layout():
    o = torch.zeros(2, 3, 8, 8)
    e = torch.zeros(2, 3, 3, 8, 8)
    keep = np.array([[True, False, True], [False, False, True]])
    img = verdict_grid(o, e, keep, scale=2, border=3, )
    cell = 16 + 2 * 3
    assert img.shape == (2 + 2 * (cell + 2), 2 + 4 * (cell + 2), 3)
    for i in range(2):
        for j in range(3):
            y, x = 2 + i * (cell + 2), 2 + (j + 1) * (cell + 2)
            assert tuple(img[y, x]) == (KEPT if keep[i, j] else REJECTED)
            assert tuple(img[y + 3, x + 3]) == (128, 128, 128)         # image pixel (0 -> 128 grey)
    with pytest.raises(ValueError, match="edits"):
        verdict_grid(o, e, keep[:, :2])


def test_direction_sweep_middle_column_is_the_face(G):
    d = Directions(["a", "b"], np.eye(100)[:2], {}, G.weights_hash)
    z = G.sample_z(1, seed=3)
    img = direction_sweep(G, d, z, alphas=(-3, 0, 3), scale=1)
    assert img.shape == (2 + 2 * 66, 2 + 3 * 66, 3)
    with torch.no_grad():
        face = to_uint8(G(z))[0]
    for row in range(2):
        y = 2 + row * 66
        assert np.array_equal(img[y:y + 64, 68:68 + 64], face)
        assert not np.array_equal(img[y:y + 64, 2:66], face)       # α = -3 changes the face
    fig = to_figure(img, row_labels=["a", "b"], col_labels=["-3", "0", "3"], title="sweep")
    assert fig.axes and fig.axes[0].get_title() == "sweep"
