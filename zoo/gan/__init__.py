"""GAN-based face augmentation (Cheng et al., seed 004): pretrained generator, alignment, inversion,
InterFaceGAN directions, editing and the landmark-disagreement filter. Pure torch/numpy (+ optional dlib,
sklearn); never imports Lightning, Hydra or W&B. See docs/gan.md."""
from zoo.gan.generators import (DCGAN64, Generator, available_generators, dcgan64_weights_path, load_generator,
                                register_generator)
from zoo.gan.detectors import available_detectors, dlib_available, load_detector, register_detector, to_uint8
from zoo.gan.align import GanAlignment, align_faces, calibrate_generator, similarity_transform
from zoo.gan.filter import REGIONS, LandmarkDisagreement, disagreement
from zoo.gan.inversion import Encoder, Inverter, Latent, psnr, ssim
from zoo.gan.directions import ATTRIBUTES, Attribute, Directions, default_cache_dir, edit, fit_directions
from zoo.gan.plots import direction_sweep, image_grid, to_figure, verdict_grid

__all__ = ["Generator", "DCGAN64", "load_generator", "register_generator", "available_generators",
           "dcgan64_weights_path", "load_detector", "register_detector", "available_detectors", "dlib_available",
           "to_uint8", "GanAlignment", "align_faces", "calibrate_generator", "similarity_transform",
           "REGIONS", "LandmarkDisagreement", "disagreement", "Encoder", "Inverter", "Latent", "psnr", "ssim",
           "ATTRIBUTES", "Attribute", "Directions", "default_cache_dir", "edit", "fit_directions",
           "direction_sweep", "image_grid", "to_figure", "verdict_grid"]
