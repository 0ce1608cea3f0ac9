"""zoo models: LightningModules (landmark regressor, recognition nets), backbones and heads.

Import the modules you need (``from zoo.models.landmark import LandmarkRegressor``); this package
initialiser stays light and only holds helpers shared by every model.
"""
from __future__ import annotations

from typing import Any, Mapping


def flatten_metrics(res: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalars of a (nested) metric dict as ``{"a/b": float}``: numbers and one-element tensors/arrays
    become floats (NaN kept); larger tensors, arrays, lists and strings are left out (they go to reports)."""
    out: dict[str, float] = {}
    for k, v in res.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_metrics(v, key + "/"))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, (int, float)):
            out[key] = float(v)
        elif hasattr(v, "item") and getattr(v, "size", None) in (1, (1,)) or \
                (hasattr(v, "numel") and callable(v.numel) and v.numel() == 1):
            out[key] = float(v.item())
    return out


__all__ = ["flatten_metrics"]
