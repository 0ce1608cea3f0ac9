"""Training samplers, all distributed-aware and checkpointable.

* :class:`UniformSampler` — shuffling without replacement, each rank a disjoint share.
* :class:`LPBBSampler` — loss-probability batch balancing (Fuhl & Kasneci, seed 002, Eq. 1).
* :class:`PKSampler` — P identities x K images per batch (FaceNet / OpenFace), a batch sampler.

Configs name them by full module path (``zoo.datamodules.samplers.lpbb.LPBBSampler``); the names are
also importable from here, loaded on first use.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"UniformSampler": "uniform", "LPBBSampler": "lpbb", "PKSampler": "pk"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
