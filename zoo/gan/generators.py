"""Pretrained face generators behind a name registry.

``load_generator("dcgan64")`` builds the classic DCGAN generator (Radford et al., "Unsupervised
Representation Learning with Deep Convolutional GANs", ICLR 2016) and loads, strictly, the 64×64 face
weights shipped in the PyPI wheel ``gan-face-generate==1.1.1`` (``weights.tar``; trained on DigiFace-1M:
research use only). The wheel's own code is never imported: only its data file is read.

Every generator here is a :class:`Generator`: ``G(z [B, D]) -> [B, 3, R, R]`` RGB in [-1, 1], split in two
stages so inversion can refine an intermediate code (the "first-layer features" of Cheng et al.'s
augmentation pipeline):

    h = G.features(z)          # [B, C, k, k]  first block's output (DCGAN: 512×4×4 after BN-ReLU)
    x = G.render(h)            # [B, 3, R, R]
    G.decode(latent)           # render(features(latent.z) + latent.residual)

A user plugs in a generator of their own (e.g. a StyleGAN2 checkpoint they hold the rights to) with
``register_generator("mine", factory)``, where ``factory(device=..., **kwargs)`` returns a
:class:`Generator`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from zoo.checks import check_choice, invalid

__all__ = ["Generator", "DCGAN64", "load_generator", "register_generator", "available_generators",
           "dcgan64_weights_path", "file_hash", "WEIGHTS_ENV", "INSTALL_HINT"]

WEIGHTS_ENV = "ZOO_GAN_WEIGHTS"
INSTALL_HINT = ("install the pretrained 64-px face generator with `pip install --no-deps gan-face-generate==1.1.1` "
                "(`make install` does it; --no-deps avoids its rdkit/moviepy/pillow pins), or point the "
                f"{WEIGHTS_ENV} environment variable (or weights=...) at its weights.tar")


class Generator(nn.Module):
    """Base class: ``features`` (z -> first-stage code) and ``render`` (code -> image in [-1, 1]).

    Attributes every generator carries: ``name``, ``latent_dim``, ``resolution``, ``weights_hash``
    (a short content hash for cache keys), ``feature_shape`` (C, k, k) and ``mean_landmarks``
    (float32 [68, 2] pixel positions of the 68 iBUG landmarks on the average generated face, or ``None``
    when unknown; :func:`zoo.gan.align_faces` needs it).
    """

    name: str = "generator"
    latent_dim: int = 100
    resolution: int = 64
    weights_hash: str = ""
    feature_shape: tuple[int, int, int] = (0, 0, 0)
    mean_landmarks: np.ndarray | None = None

    def features(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.render(self.features(z))

    def decode(self, latent: Any) -> torch.Tensor:
        """Images of a :class:`zoo.gan.Latent` (``z`` plus an optional first-stage residual)."""
        h = self.features(latent.z.to(self.device_))
        if getattr(latent, "residual", None) is not None:
            h = h + latent.residual.to(h.device, h.dtype)
        return self.render(h)

    @property
    def device_(self) -> torch.device:
        return next(self.parameters()).device

    def sample_z(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent codes z ~ N(0, I) [n, latent_dim] on the generator's device (seeded when ``seed``)."""
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        return torch.randn(int(n), self.latent_dim, generator=generator).to(self.device_)


class DCGAN64(Generator):
    """DCGAN generator, 100-d z -> 64×64 RGB (Radford et al. 2016), layer names matching ``netG.main``.

    ``main``: ConvT(100→512, 4, 1, 0)–BN–ReLU, ConvT(512→256, 4, 2, 1)–BN–ReLU, ConvT(256→128, 4, 2, 1)–BN–ReLU,
    ConvT(128→64, 4, 2, 1)–BN–ReLU, ConvT(64→3, 4, 2, 1)–Tanh; no biases. ``features`` = ``main[0:3]`` (512×4×4),
    ``render`` = ``main[3:]``. Accepts z as [B, 100] or [B, 100, 1, 1].
    """

    def __init__(self, latent_dim: int = 100, width: int = 64) -> None:
        super().__init__()
        ngf = int(width)
        self.latent_dim, self.resolution, self.feature_shape = int(latent_dim), 64, (ngf * 8, 4, 4)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def features(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected [B, {self.latent_dim}] or [B, {self.latent_dim}, 1, 1]")
        return self.main[:3](z)

    def render(self, h: torch.Tensor) -> torch.Tensor:
        return self.main[3:](h)


def file_hash(path: str | os.PathLike, n: int = 16) -> str:
    """First ``n`` hex digits of the file's SHA-256 (the cache key of everything derived from a generator)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def dcgan64_weights_path(weights: str | os.PathLike | None = None) -> Path:
    """Where the DCGAN weights are: ``weights`` if given, else ``$ZOO_GAN_WEIGHTS``, else the installed wheel's
    ``gan_face_generate/weights.tar`` (found with :func:`importlib.util.find_spec`, without importing it).
    Raises ValueError saying how to install them when none exists."""
    if weights is None:
        weights = os.environ.get(WEIGHTS_ENV) or None
        key = WEIGHTS_ENV
    else:
        key = "weights"
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise invalid(key, str(weights), "no such file", f"the DCGAN weights.tar; {INSTALL_HINT}")
        return path
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "weights.tar"
            if path.is_file():
                return path
    raise ValueError(f"generator 'dcgan64': weights not found (package gan_face_generate is "
                     f"{'installed without weights.tar' if spec is not None else 'not installed'}); {INSTALL_HINT}")


def _load_dcgan64(device: str | torch.device = "cpu", weights: str | os.PathLike | None = None) -> DCGAN64:
    path = dcgan64_weights_path(weights)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a wrong file
        raise ValueError(f"{path}: cannot read DCGAN weights ({e}); {INSTALL_HINT}") from e
    state = blob.get("netG_state_dict") if isinstance(blob, dict) else None
    if state is None:
        raise ValueError(f"{path}: no 'netG_state_dict' key (found {list(blob)[:5] if isinstance(blob, dict) else type(blob).__name__}); "
                         f"expected the gan-face-generate weights.tar")
    G = DCGAN64()
    G.load_state_dict(state, strict=True)
    G.name, G.weights_hash = "dcgan64", file_hash(path)
    from zoo.gan._dcgan64_shape import MEAN_LANDMARKS
    G.mean_landmarks = np.asarray(MEAN_LANDMARKS, dtype=np.float32)
    for p in G.parameters():
        p.requires_grad_(False)
    return G.to(device).eval()


_REGISTRY: dict[str, Callable[..., Generator]] = {"dcgan64": _load_dcgan64}


def register_generator(name: str, factory: Callable[..., Generator], overwrite: bool = False) -> None:
    """Make ``load_generator(name)`` call ``factory(device=..., **kwargs)``, which returns a :class:`Generator`."""
    if not isinstance(name, str) or not name:
        raise invalid("name", name, "not a non-empty string", "a generator name")
    if name in _REGISTRY and not overwrite:
        raise invalid("name", name, "already registered", "a new name (or overwrite=True)")
    if not callable(factory):
        raise invalid("factory", factory, "not callable", "a function returning a zoo.gan.Generator")
    _REGISTRY[name] = factory


def available_generators() -> list[str]:
    """Names :func:`load_generator` accepts."""
    return sorted(_REGISTRY)


def load_generator(name: str = "dcgan64", device: str | torch.device = "cpu", **kwargs: Any) -> Generator:
    """Build the named generator in eval mode with frozen parameters (``dcgan64``: ``weights=`` path optional)."""
    check_choice("generator", name, available_generators())
    G = _REGISTRY[name](device=device, **kwargs)
    if not isinstance(G, Generator):
        raise ValueError(f"generator {name!r}: factory returned {type(G).__name__}; expected a zoo.gan.Generator")
    if not G.name or G.name == "generator":
        G.name = name
    return G.eval()
