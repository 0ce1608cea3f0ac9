"""A tiny stand-in for :mod:`zoo.gan` (same entry points as docs/gan.md / the H4 contract) so the GAN-augmented
datamodule's own logic (mixing, caching, tags, samplers, DDP) is tested without the real generator.

Generator: every image is one flat colour, channel c = tanh(z[c]) (z has 6 dims, images 16 px). Inverter: reads
the crop's mean colour back into z[:3] exactly. Directions: brightness = (1,1,1,0,0,0)/sqrt(3), others fixed unit
vectors. Filter: score = mean |original - edit| / 2 of the images (in [-1, 1]); keep = score < threshold.
"""
from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from zoo.gan.plots import verdict_grid  # the real figure function (pure numpy/cv2), imported before any fake

RES, DIM = 16, 6


class FakeG(nn.Module):
    latent_dim, resolution, name = DIM, RES, "fake16"

    def __init__(self, weights_hash: str = "w0") -> None:
        super().__init__()
        self.weights_hash = weights_hash

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z[:, :3])[:, :, None, None].expand(-1, 3, RES, RES).contiguous()

    def decode(self, lat: "Latent") -> torch.Tensor:
        return self(lat.z)


@dataclass
class Latent:
    z: torch.Tensor


@dataclass
class GanAlignment:
    crops: torch.Tensor
    affines: np.ndarray


def make(calls: dict, weights_hash: str = "w0") -> types.ModuleType:
    """A module object with the zoo.gan entry points; ``calls`` counts invert / fit_encoder / filter calls."""
    m = types.ModuleType("zoo.gan")

    def load_generator(name, device="cpu"):
        if name != "fake16":
            raise ValueError(f"generator={name!r} unknown; expected one of ['fake16']")
        return FakeG(weights_hash)

    def align_faces(images, landmarks, generator):
        import cv2

        images = np.asarray(images)
        s = images.shape[1]
        crops = np.stack([cv2.resize(im, (RES, RES), interpolation=cv2.INTER_AREA) for im in images])
        a = RES / s
        aff = np.repeat(np.array([[[a, 0, 0.5 * a - 0.5], [0, a, 0.5 * a - 0.5]]]), len(images), 0)
        calls["align"] = calls.get("align", 0) + 1
        return GanAlignment(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1, aff)

    class Inverter:
        def __init__(self, G, cache_dir=None):
            self.G, self.last_quality = G, {}

        def fit_encoder(self, steps, batch_size, seed=0):
            calls["fit_encoder"] = calls.get("fit_encoder", 0) + 1

        def save(self, path):
            torch.save({"fake": True}, path)

        @classmethod
        def load(cls, path, G=None):
            return cls(G or FakeG(weights_hash))

        def invert(self, crops, batch_size=64, refine_steps=0):
            calls["invert"] = calls.get("invert", 0) + 1
            mean = crops.float().mean(dim=(2, 3)).clamp(-0.99, 0.99)
            z = torch.zeros(len(crops), DIM)
            z[:, :3] = torch.atanh(mean)
            self.last_quality = {"psnr": 99.0, "ssim": 1.0}
            return Latent(z)

    vecs = {"brightness": [1, 1, 1, 0, 0, 0], "smile": [0, 0, 0, 1, 0, 0], "yaw": [1, -1, 0, 0, 0, 0],
            "colour_temperature": [1, 0, -1, 0, 0, 0]}
    ATTRIBUTES = {k: (lambda imgs: imgs.mean(dim=(1, 2, 3))) for k in vecs}

    class Directions:
        def __init__(self, names):
            self.names = list(names)

        def __getitem__(self, name):
            v = torch.tensor(vecs[name], dtype=torch.float32)
            return v / v.norm()

        def conditional(self, name, condition=()):
            v = self[name]
            for c in condition:
                u = self[c]
                v = v - (v @ u) * u
            return v / v.norm()

        def save(self, path):
            np.savez(path, names=np.array(self.names))

        @classmethod
        def load(cls, path):
            return cls([str(n) for n in np.load(path)["names"]])

    def fit_directions(G, names, n_samples=100, seed=0, detector=None, cache_dir=None):
        calls["fit_directions"] = calls.get("fit_directions", 0) + 1
        return Directions(names)

    def edit(G, lat, direction, alpha):
        return G(lat.z + torch.as_tensor(alpha, dtype=torch.float32)[:, None] * direction[None])

    def load_detector(name):
        if name not in ("fake",):
            raise ValueError(f"detector={name!r} unknown")
        return lambda images: np.tile(np.linspace(2, RES - 3, 68)[None, :, None], (len(images), 1, 2))

    class LandmarkDisagreement:
        def __init__(self, det, threshold=0.05):
            self.det, self.threshold = det, threshold

        def detect(self, images):
            return np.zeros((len(images), 68, 2), np.float32)

        def __call__(self, original, edited, original_landmarks=None):
            calls["filter"] = calls.get("filter", 0) + 1
            score = (original - edited).abs().mean(dim=(1, 2, 3)) / 2
            return {"score": score, "regions": {}, "keep": score < self.threshold}

    m.load_generator, m.align_faces, m.GanAlignment, m.Inverter, m.Latent = load_generator, align_faces, GanAlignment, Inverter, Latent
    m.ATTRIBUTES, m.fit_directions, m.Directions, m.edit = ATTRIBUTES, fit_directions, Directions, edit
    m.load_detector, m.available_detectors, m.LandmarkDisagreement = load_detector, (lambda: ["fake"]), LandmarkDisagreement
    m.available_generators = lambda: ["fake16"]
    m.verdict_grid = verdict_grid
    return m


def install(monkeypatch, calls: dict | None = None, weights_hash: str = "w0") -> dict:
    import sys

    calls = {} if calls is None else calls
    monkeypatch.setitem(sys.modules, "zoo.gan", make(calls, weights_hash))
    return calls
