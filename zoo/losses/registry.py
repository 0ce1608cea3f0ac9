"""Name -> loss class registry: ``build("wing", omega=10)``, ``available()``.

Configs pick losses by name; plain imports (``from zoo.losses import WingLoss``) work too.
"""
from __future__ import annotations

from typing import Dict, List, Type

from torch import nn

from .landmark import AdaptiveWingLoss, L1Loss, L2Loss, SmoothL1Loss, SoftWingLoss, WingLoss
from .margin import ArcFaceLoss, CombinedMarginLoss, CosFaceLoss
from .triplet import TripletLoss
from .validation import ValidationLoss

LANDMARK_LOSSES: Dict[str, Type[nn.Module]] = {
    "l1": L1Loss,
    "l2": L2Loss,
    "smooth_l1": SmoothL1Loss,
    "wing": WingLoss,
    "soft_wing": SoftWingLoss,
    "adaptive_wing": AdaptiveWingLoss,
}

LOSSES: Dict[str, Type[nn.Module]] = {
    **LANDMARK_LOSSES,
    "validation": ValidationLoss,
    "triplet": TripletLoss,
    "arcface": ArcFaceLoss,
    "cosface": CosFaceLoss,
    "combined_margin": CombinedMarginLoss,
}


def available() -> List[str]:
    """Sorted names accepted by :func:`build`."""
    return sorted(LOSSES)


def build(name: str, **kwargs) -> nn.Module:
    """Instantiate the loss registered as ``name`` with constructor ``kwargs``.

    Raises ValueError for an unknown name (listing the available ones) or unknown keyword arguments.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(available())}")
    cls = LOSSES[name]
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"invalid arguments for loss {name!r} ({cls.__name__}): {e}") from None
