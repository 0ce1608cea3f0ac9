"""Plug-in losses for face analysis; pure torch (no Lightning, Hydra, W&B or timm import).

Landmark regression: :class:`L1Loss`, :class:`L2Loss`, :class:`SmoothL1Loss`, :class:`WingLoss`,
:class:`SoftWingLoss`, :class:`AdaptiveWingLoss`; :class:`ValidationLoss` (seed 002, Eq. 3).
Recognition: :class:`TripletLoss` (+ miners), :class:`ArcFaceLoss`, :class:`CosFaceLoss`,
:class:`CombinedMarginLoss`. By name: ``build("wing", omega=10)``, ``available()``.
"""
from .landmark import AdaptiveWingLoss, L1Loss, L2Loss, LandmarkLoss, SmoothL1Loss, SoftWingLoss, WingLoss
from .margin import ArcFaceLoss, CombinedMarginLoss, CosFaceLoss
from .miners import MINERS
from .registry import available, build
from .triplet import TripletLoss
from .validation import ValidationLoss, ValidationLossOutput

__all__ = [
    "AdaptiveWingLoss", "ArcFaceLoss", "CombinedMarginLoss", "CosFaceLoss", "L1Loss", "L2Loss", "LandmarkLoss",
    "MINERS", "SmoothL1Loss", "SoftWingLoss", "TripletLoss", "ValidationLoss", "ValidationLossOutput",
    "WingLoss", "available", "build",
]
