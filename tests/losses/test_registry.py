"""zoo.losses.build / available and the package's public names."""
from __future__ import annotations

import pytest
import torch

import zoo.losses as L

EXPECTED = ["adaptive_wing", "arcface", "combined_margin", "cosface", "l1", "l2", "smooth_l1", "soft_wing",
            "triplet", "validation", "wing"]


def test_available_names():
    assert L.available() == EXPECTED


def test_build_every_name_with_defaults():
    for name in EXPECTED:
        kw = {"embedding_dim": 4, "num_classes": 3} if name in ("arcface", "cosface", "combined_margin") else {}
        loss = L.build(name, **kw)
        assert isinstance(loss, torch.nn.Module)
    assert L.build("wing", omega=5.0).omega == 5.0
    assert L.build("smooth_l1", beta=0.5).beta == 0.5


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="unknown loss 'wingg'.*adaptive_wing.*wing"):
        L.build("wingg")


def test_bad_kwargs_are_value_errors():
    with pytest.raises(ValueError, match="wing"):
        L.build("wing", omegaa=3)
    with pytest.raises(ValueError, match="omega"):
        L.build("wing", omega=-3)


def test_classes_importable_from_package():
    from zoo.losses import (AdaptiveWingLoss, ArcFaceLoss, CombinedMarginLoss, CosFaceLoss, L1Loss,  # noqa: F401
                            L2Loss, SmoothL1Loss, SoftWingLoss, TripletLoss, ValidationLoss, WingLoss)
    assert L.build("wing").__class__ is WingLoss
