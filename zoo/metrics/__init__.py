"""Evaluation metrics (pure torch/numpy/torchmetrics: importing zoo.metrics never pulls Lightning, Hydra or W&B).

* :class:`zoo.metrics.landmarks.LandmarkMetrics` -- NME, CED failure rate / AUC, accuracy at a fraction of
  the face-box diagonal, per-subset values, validation-signal discard and correlations (seed 002); its
  figures (``ced_figure``, ``validation_figure``, ``sample_figure``) are in the same module.
* :class:`zoo.metrics.verification.VerificationMetrics` -- face verification (LFW protocol, ROC, TAR@FAR).
"""
from __future__ import annotations

from .landmarks import LandmarkMetrics
from .verification import VerificationMetrics

__all__ = ["LandmarkMetrics", "VerificationMetrics"]
