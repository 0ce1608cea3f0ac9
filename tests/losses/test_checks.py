"""Input validation helpers: errors name the argument and the expected shape / range."""
from __future__ import annotations

import pytest
import torch

from zoo.losses import AdaptiveWingLoss, ArcFaceLoss, CombinedMarginLoss, TripletLoss, ValidationLoss, WingLoss
from zoo.losses._checks import check_embeddings, check_landmarks
from zoo.losses._reduction import check_reduction


def test_constructor_arguments_use_zoo_checks_message():
    """<name>=<value> is invalid: <problem>; expected <expectation> (zoo.checks), naming the argument."""
    for bad in (0.0, -1.0, float("nan"), float("inf"), "3", True, None):
        with pytest.raises(ValueError, match=r"^omega=.* is invalid: .*; expected a finite number in \(0.0, inf\)"):
            WingLoss(omega=bad)
    with pytest.raises(ValueError, match=r"^m2=4.0 is invalid: out of range; expected a finite number in \[0.0, 3.14"):
        CombinedMarginLoss(4, 3, m2=4.0)
    with pytest.raises(ValueError, match=r"^subcenters=0 is invalid: out of range; expected an integer >= 1"):
        ArcFaceLoss(4, 3, subcenters=0)
    with pytest.raises(ValueError, match=r"^subcenters=2.0 is invalid: not an integer"):
        ArcFaceLoss(4, 3, subcenters=2.0)
    with pytest.raises(ValueError, match=r"^reduction='avg' is invalid: unknown choice; expected one of 'mean'"):
        check_reduction("avg")
    with pytest.raises(ValueError, match=r"^miner='hardest' is invalid: unknown choice; expected one of .*semihard"):
        TripletLoss(miner="hardest")
    with pytest.raises(ValueError, match=r"^coord_loss='l3' is invalid: unknown choice; expected one of .*wing"):
        ValidationLoss(coord_loss="l3")
    with pytest.raises(ValueError, match=r"^target_value=1.5 is invalid: out of range"):
        AdaptiveWingLoss(target_value=1.5)
    with pytest.raises(ValueError, match=r"^normalize=1 is invalid: not a bool"):
        TripletLoss(normalize=1)


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
