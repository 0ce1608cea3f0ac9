"""Name -> loss class registry: ``build("wing", omega=10)``, ``available()``.

Configs pick losses by name; plain imports (``from zoo.losses import WingLoss``) work too.
"""
from __future__ import annotations

from typing import Dict, List, Type

from torch import nn

from .landmark import LANDMARK_LOSSES
from .margin import ArcFaceLoss, CombinedMarginLoss, CosFaceLoss
from .triplet import TripletLoss
from .validation import ValidationLoss

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
