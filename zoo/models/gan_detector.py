"""Registers the zoo's own landmark model as a zoo.gan detector: ``load_detector("zoo:<checkpoint>")``.

zoo.gan is a pure package and never imports zoo.models (Lightning side); importing this module (train.py,
generate.py and the gan_augmented datamodule do) adds the ``"zoo"`` prefix to its detector registry. The
detector runs :class:`zoo.models.inference.LandmarkPredictor` on whole images (each image is taken to be the
face crop, as GAN crops are) and returns [N, 68, 2] pixel landmarks.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zoo.checks import check_path, invalid
from zoo.gan.detectors import register_detector


class ZooLandmarkDetector:
    """``det(images_uint8_rgb [N, H, W, 3]) -> [N, 68, 2]`` from a zoo landmark checkpoint."""

    def __init__(self, checkpoint: str, device: str = "cpu", **overrides: Any) -> None:
        from zoo.models.inference import LandmarkPredictor

        path = check_path("detector", checkpoint, kind="file")
        self.predictor = LandmarkPredictor.from_checkpoint(path, device=device, **overrides)

    def __call__(self, images: Any) -> np.ndarray:
        out = self.predictor.predict(images).landmarks
        if out.shape[1] != 68:
            raise invalid("detector", "zoo:<checkpoint>", f"the model predicts {out.shape[1]} landmarks",
                          "a 68-point (ibug68) landmark model")
        return np.asarray(out, np.float32)


def _factory(arg: str, **kwargs: Any) -> ZooLandmarkDetector:
    if not arg:
        raise invalid("detector", "zoo", "no checkpoint given", "zoo:<path to a landmark checkpoint>")
    return ZooLandmarkDetector(arg, **kwargs)


register_detector("zoo", _factory, overwrite=True)
