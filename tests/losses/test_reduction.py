"""The shared reduction helper."""
import torch

from zoo.losses._reduction import compute_dtype, reduce


def test_reduce():
    v = torch.tensor([1.0, 2.0, 6.0])
    assert reduce(v, "mean").item() == 3.0
    assert reduce(v, "sum").item() == 9.0
    assert reduce(v, "none") is v


def test_compute_dtype():
    assert compute_dtype(torch.float16) == torch.float32
    assert compute_dtype(torch.bfloat16) == torch.float32
    assert compute_dtype(torch.float64) == torch.float64
