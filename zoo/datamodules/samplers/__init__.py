"""Training samplers, all distributed-aware and checkpointable.

* :class:`UniformSampler` — shuffling without replacement, each rank a disjoint share.
* :class:`LPBBSampler` — loss-probability batch balancing (Fuhl & Kasneci, seed 002, Eq. 1).
* :class:`PKSampler` — P identities x K images per batch (FaceNet / OpenFace), a batch sampler.

Configs name them by full module path (``zoo.datamodules.samplers.lpbb.LPBBSampler``); the names are
importable from here too (all three only need torch and numpy).
"""
from zoo.datamodules.samplers.lpbb import LPBBSampler
from zoo.datamodules.samplers.pk import PKSampler
from zoo.datamodules.samplers.uniform import UniformSampler

__all__ = ["UniformSampler", "LPBBSampler", "PKSampler"]
