"""normaliser(): data.mean / data.std for every dataset, checked against hand-computed tensors."""
from __future__ import annotations

import pytest
import torch

from zoo.datamodules.samples import normaliser


def test_one_value_or_one_per_channel():
    mean, std = normaliser(0.5, [0.25, 0.5, 1.0], 3)
    assert mean.shape == std.shape == (3, 1, 1)
    x = torch.full((3, 2, 2), 0.75)
    torch.testing.assert_close((x - mean) / std, torch.tensor([1.0, 0.5, 0.25]).reshape(3, 1, 1).expand(3, 2, 2))


@pytest.mark.parametrize("mean, std, match", [
    ([0.1, 0.2], 1.0, r"data.mean=\[0.1, 0.2\] is invalid: 2 values for 3 channel"),
    (0.0, 0.0, "data.std=0.0 is invalid: not finite and > 0"),
    (0.0, [1.0, -1.0, 1.0], "data.std"),
    (float("nan"), 1.0, "data.mean=nan is invalid: not finite"),
    ("grey", 1.0, "data.mean='grey' is invalid: not a number"),
])
def test_bad_values_name_the_key(mean, std, match):
    with pytest.raises(ValueError, match=match):
        normaliser(mean, std, 3)
