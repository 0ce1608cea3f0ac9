from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from zoo.gan import DCGAN64, available_generators, load_generator, register_generator
from zoo.gan.generators import INSTALL_HINT, dcgan64_weights_path


def test_loads_real_weights_strictly(G):
    path = dcgan64_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)["netG_state_dict"]
    own = G.state_dict()
    assert set(own) == set(state)          # strict: no missing, no unexpected keys
    for k, v in state.items():
        assert torch.equal(own[k].cpu(), v.cpu()), k
    assert not G.training and G.latent_dim == 100 and G.resolution == 64 and len(G.weights_hash) == 16


def test_output_range_shape_and_split(G, samples):
    z, x = samples
    assert x.shape == (64, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    # features/render split reproduces the plain nn.Sequential forward
    with torch.no_grad():
        ref = G.main(z[:, :, None, None])
    assert torch.allclose(x, ref, atol=1e-6)


def test_produces_faces_dlib_hog(samples, dlib_det):
    """dlib's HOG face detector (independent of the generator) finds a face in most samples, and in almost
    none of the images of the same network with random weights (negative control).
    (This opencv-python-headless build ships no Haar cascades, so dlib is the bundled detector.)"""
    import cv2
    import dlib

    from zoo.gan import to_uint8

    hog = dlib.get_frontal_face_detector()

    def rate(x):
        ims = to_uint8(x)
        return np.mean([len(hog(cv2.resize(im, (256, 256), interpolation=cv2.INTER_CUBIC), 0)) > 0 for im in ims])

    found = rate(samples[1])
    assert found > 0.6, found
    torch.manual_seed(0)
    R = DCGAN64().eval()
    with torch.no_grad():
        neg = rate(R(samples[0]))
    assert neg < 0.1, neg


def test_missing_weights_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_GAN_WEIGHTS", str(tmp_path / "nope.tar"))
    with pytest.raises(ValueError, match="pip install --no-deps gan-face-generate"):
        load_generator("dcgan64")
    monkeypatch.delenv("ZOO_GAN_WEIGHTS")
    with pytest.raises(ValueError, match="pip install --no-deps gan-face-generate"):
        load_generator("dcgan64", weights=tmp_path / "nope.tar")
    bad = tmp_path / "bad.tar"
    torch.save({"other": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="netG_state_dict"):
        load_generator("dcgan64", weights=bad)
    assert "ZOO_GAN_WEIGHTS" in INSTALL_HINT


def test_unknown_generator_lists_valid_names():
    with pytest.raises(ValueError, match="'dcgan64'") as e:
        load_generator("stylegan9")
    assert "stylegan9" in str(e.value)


def test_register_own_generator():
    def factory(device="cpu", **kw):
        g = DCGAN64(width=8)
        g.weights_hash = "x"
        return g.to(device)

    register_generator("tiny_test", factory, overwrite=True)
    assert "tiny_test" in available_generators()
    g = load_generator("tiny_test")
    assert g.name == "tiny_test" and g(torch.zeros(2, 100)).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="already registered"):
        register_generator("tiny_test", factory)


def test_pure_package_imports_no_lightning():
    code = ("import sys, zoo.gan; bad=[m for m in ('lightning','pytorch_lightning','hydra','wandb') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
