"""Training samplers, all distributed-aware and checkpointable.

* :class:`~zoo.datamodules.samplers.uniform.UniformSampler` — shuffling without replacement, each rank a
  disjoint share.
* :class:`~zoo.datamodules.samplers.lpbb.LPBBSampler` — loss-probability batch balancing (Fuhl & Kasneci,
  seed 002, Eq. 1).
* :class:`~zoo.datamodules.samplers.pk.PKSampler` — P identities x K images per batch (FaceNet / OpenFace),
  a batch sampler.

Configs and code name them by module path (``zoo.datamodules.samplers.lpbb.LPBBSampler``); the package itself
exports nothing, so importing one sampler never imports the others (and no import runs back into the package).
"""
