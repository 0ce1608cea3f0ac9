"""3DMM-synthetic face images (Kortylewski et al., CVPRW 2019 / FG 2018: the Basel parametric face image generator).

A morphable model (shape, colour, expression; built-in, Surrey Face Model or Basel Face Model 2017) is sampled,
lit with 27 spherical-harmonics coefficients (Lambertian), posed (yaw/pitch/roll) in front of a pinhole camera,
rasterised with a numba z-buffer over a random background, and labelled with 68 iBUG landmarks and their
visibility. Imports only numpy, scipy, numba, h5py, opencv and torch (never Lightning, Hydra or W&B).
"""
from zoo.synth.camera import Camera, PoseRange, rotation_matrix
from zoo.synth.illumination import GaussianLightPrior, EmpiricalLightPrior, sh_basis, shade
from zoo.synth.loaders import load_model
from zoo.synth.morphable import MorphableModel
from zoo.synth.generator import FaceGenerator, GeneratorConfig

__all__ = [
    "Camera", "PoseRange", "rotation_matrix", "GaussianLightPrior", "EmpiricalLightPrior", "sh_basis", "shade",
    "MorphableModel", "load_model", "FaceGenerator", "GeneratorConfig",
]
