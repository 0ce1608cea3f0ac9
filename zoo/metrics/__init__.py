"""Evaluation metrics (pure torch/numpy/torchmetrics: importing zoo.metrics never pulls Lightning, Hydra or W&B).

* :class:`zoo.metrics.landmarks.LandmarkMetrics` -- NME, CED failure rate / AUC, accuracy at a fraction of
  the face-box diagonal, per-subset values, validation-signal discard and correlations (seed 002).
* :class:`zoo.metrics.verification.VerificationMetrics` -- face verification (LFW protocol, ROC, TAR@FAR).

Names are loaded on first use, so ``import zoo.metrics`` itself costs nothing.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"LandmarkMetrics": "landmarks", "VerificationMetrics": "verification"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
