"""Morphable models by name: ``load_model("builtin" | "sfm" | "bfm2017", path, ...)`` (cached per process).

The one place that knows every model file format (:mod:`zoo.synth.builtin`, :mod:`zoo.synth.sfm`,
:mod:`zoo.synth.bfm`); those modules import :mod:`zoo.synth.morphable`, which imports none of them.
"""
from __future__ import annotations

import functools
import os

from zoo.synth.bfm import load_bfm2017
from zoo.synth.builtin import builtin_model
from zoo.synth.morphable import MorphableModel
from zoo.synth.sfm import load_sfm


@functools.lru_cache(maxsize=4)
def load_model(name: str = "builtin", path: str | None = None, landmark_mapping: str | None = None,
               contour: str | None = None) -> MorphableModel:
    """The morphable model ``name`` ("builtin" | "sfm" | "bfm2017"), built or read once per process (cached).

    ``path``: sfm: the folder holding sfm_shape_3448.bin (or the .bin file itself); bfm2017: the .h5 file.
    ``landmark_mapping``: iBUG-68 mapping file (eos TOML format) overriding the default next to the model.
    ``contour``: model-contour JSON (eos format) for the jaw line, default next to the model when present.
    """
    if name == "builtin":
        return builtin_model()
    if name == "sfm":
        if path is None:
            raise ValueError("data.model_path must point at the Surrey Face Model folder (sfm_shape_3448.bin) for "
                             "model='sfm'")
        return load_sfm(os.fspath(path), landmark_mapping=landmark_mapping, contour=contour)
    if name == "bfm2017":
        if path is None:
            raise ValueError("data.model_path must point at a Basel Face Model 2017 .h5 file for model='bfm2017'")
        return load_bfm2017(os.fspath(path), landmark_mapping=landmark_mapping, contour=contour)
    raise ValueError(f"unknown morphable model {name!r}; expected one of ['builtin', 'sfm', 'bfm2017']")
