"""Input validation helpers: errors name the argument and the expected shape / range."""
from __future__ import annotations

import pytest
import torch

from zoo.losses._checks import (check_embeddings, check_int, check_landmarks, check_nonnegative, check_number,
                                check_positive, check_reduction)


def test_numbers():
    assert check_positive("omega", 2) == 2.0
    assert check_nonnegative("margin", 0.0) == 0.0
    for bad in (0.0, -1.0, float("nan"), float("inf"), "3", True, None):
        with pytest.raises(ValueError, match="omega"):
            check_positive("omega", bad)
    with pytest.raises(ValueError, match=r"m2=4.0 is out of range; expected a finite value in \[0.0, 3.14"):
        check_number("m2", 4.0, low=0.0, high=3.14159, low_inclusive=True)
    with pytest.raises(ValueError, match="subcenters"):
        check_int("subcenters", 0)
    with pytest.raises(ValueError, match="subcenters"):
        check_int("subcenters", 2.0)
    with pytest.raises(ValueError, match="reduction='avg'.*mean"):
        check_reduction("avg")


def test_landmarks():
    p = torch.zeros(2, 3, 2)
    check_landmarks(p, p, None)
    check_landmarks(p, p, torch.ones(3))
    check_landmarks(p, p, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"pred must have shape \[B, L, 2\], got \(2, 3, 3\)"):
        check_landmarks(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3), None)
    with pytest.raises(ValueError, match=r"target must have the same shape as pred"):
        check_landmarks(p, torch.zeros(3, 3, 2), None)
    with pytest.raises(ValueError, match=r"weight must have shape \[B, L\]=\[2, 3\] or \[L\]=\[3\]"):
        check_landmarks(p, p, torch.ones(2))
    with pytest.raises(ValueError, match="weight must be a float weight or a bool"):
        check_landmarks(p, p, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="weight must be finite and >= 0"):
        check_landmarks(p, p, torch.tensor([1.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="pred must be a floating point"):
        check_landmarks(p.long(), p.long(), None)
    with pytest.raises(ValueError, match="pred must be a torch.Tensor"):
        check_landmarks([[0.0, 0.0]], p, None)


def test_embeddings():
    check_embeddings(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must have shape \[B\]=\[4\]"):
        check_embeddings(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        check_embeddings(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"embeddings must have shape \[B, D\]"):
        check_embeddings(torch.zeros(4), torch.zeros(4, dtype=torch.long))
