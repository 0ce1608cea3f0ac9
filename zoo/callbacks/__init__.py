"""Lightning callbacks of zoo (import the module you need; names resolve lazily here too).

* :class:`~zoo.callbacks.loss_feedback.LossFeedback` — per-sample losses to the LPBB sampler
* :class:`~zoo.callbacks.loss_schedule.LossSchedule` — L2 -> L1 -> Wing coordinate-loss stages
* :class:`~zoo.callbacks.nan_guard.NaNGuard` — stop on NaN/inf loss before the step and any checkpoint
* :class:`~zoo.callbacks.visual_logging.VisualLogging` — predictions coloured by the validation signal
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"LossFeedback": "loss_feedback", "LossSchedule": "loss_schedule", "NaNGuard": "nan_guard",
          "NonFiniteLossError": "nan_guard", "VisualLogging": "visual_logging"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"zoo.callbacks.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'zoo.callbacks' has no attribute {name!r}")
