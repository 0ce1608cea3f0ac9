"""Plug-in losses for face analysis; pure torch (no Lightning, Hydra, W&B or timm import).

Landmark regression: :class:`L1Loss`, :class:`L2Loss`, :class:`SmoothL1Loss`, :class:`WingLoss`,
:class:`SoftWingLoss`, :class:`AdaptiveWingLoss`; :class:`ValidationLoss` (seed 002, Eq. 3).
Recognition: :class:`TripletLoss` (+ miners), :class:`ArcFaceLoss`, :class:`CosFaceLoss`,
:class:`CombinedMarginLoss` (= :class:`NormalisedClassifier` class centres + a stateless margin
:class:`ArcFace` / :class:`CosFace` / :class:`CombinedMargin` + cross-entropy; Partial FC via
``sample_rate``). By name: ``build("wing", omega=10)``, ``available()``.
"""
from .landmark import AdaptiveWingLoss, L1Loss, L2Loss, LandmarkLoss, SmoothL1Loss, SoftWingLoss, WingLoss
from .classifier import NormalisedClassifier, NormLinear
from .margin import ArcFace, ArcFaceLoss, CombinedMargin, CombinedMarginLoss, CosFace, CosFaceLoss
from .miners import MINERS
from .registry import available, build
from .triplet import TripletLoss, TripletLossOutput
from .validation import ValidationLoss, ValidationLossOutput

__all__ = [
    "AdaptiveWingLoss", "ArcFace", "ArcFaceLoss", "CombinedMargin", "CombinedMarginLoss", "CosFace",
    "CosFaceLoss", "L1Loss", "L2Loss", "LandmarkLoss", "MINERS", "NormLinear", "NormalisedClassifier",
    "SmoothL1Loss", "SoftWingLoss", "TripletLoss", "TripletLossOutput", "ValidationLoss",
    "ValidationLossOutput", "WingLoss", "available", "build",
]
