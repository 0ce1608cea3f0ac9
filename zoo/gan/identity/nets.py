"""Networks of the identity/attribute face-synthesis GAN (seed 003, Vine §3.1 and Appendix A; after Bao et al.,
"Towards open-set identity preserving face synthesis", CVPR 2018). Pure torch.

* :class:`AttributeEncoder` A: DCGAN-style stride-2 4×4 convolutions down to 4×4, a 4×4 convolution to a
  ``hidden``-d vector (Tanh), two linear layers for μ and log σ² (``attr_dim``, paper 128). Reparametrised
  output (Eq. 2): ``f_A(x) = μ + r · exp(0.5 · log σ²)``, ``r ~ N(0, I)``.
* :class:`Generator` G: ``[f_I, f_A]`` (``identity_dim + attr_dim``) → 4×4 by a 4×4 transposed convolution, then
  per scale: (Upsample ×2) Conv3×3-LReLU-Conv3×3-BN-LReLU, and a 1×1 convolution + Tanh "to-RGB" at **every**
  scale (4, 8, …, ``resolution``), so the multi-scale reconstruction loss (Eq. 4) sees every scale.
  Upsampling + 3×3 convolutions instead of transposed convolutions (no checkerboard, the paper's choice).
* :class:`Discriminator` D: the encoder's trunk, a 4×4 convolution to ``feature_dim`` (paper 512) features
  ``f_D`` (what the feature-matching loss L_GD, Eq. 5, compares), a linear layer to one logit (the sigmoid of
  Table 6 is folded into the loss: ``binary_cross_entropy_with_logits``, numerically stable).
* :class:`IdentityGAN`: the "identity GAN" of §4.1.2, a Gaussian ``z`` → unit identity vector MLP generator and
  an MLP discriminator on identity vectors; its samples are the unseen identities of every second attribute step.

Widths: level ``i`` (resolution halved ``i`` times) has ``min(width · 2^i, max_width)`` channels. Paper
(128 px): ``width=128`` (Table 6 uses 128-256-512-512-1024) and a 1024-wide generator start; the zoo's CPU default
is ``width=32, max_width=256`` at 64 px (documented in docs/identity_gan.md).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _levels(resolution: int) -> int:
    """Number of stride-2 halvings from ``resolution`` to 4 (64 -> 4, 128 -> 5)."""
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8 (e.g. 64 or 128), got {resolution!r}")
    return int(math.log2(resolution)) - 2


def _width(level: int, width: int, max_width: int) -> int:
    return min(width * 2 ** level, max_width)


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al.): conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class _Trunk(nn.Sequential):
    """Stride-2 4×4 convs ``resolution -> 4`` (first without BatchNorm), LeakyReLU 0.2 (Table 6)."""

    def __init__(self, resolution: int, channels: int, width: int, max_width: int) -> None:
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(_levels(resolution)):
            c_out = _width(i, width, max_width)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        super().__init__(*layers)
        self.out_channels = c_in


class AttributeEncoder(nn.Module):
    """A: image ``[B, C, R, R]`` → ``(f_A, μ, log σ²)``, each ``[B, attr_dim]`` (Eq. 2; ``f_A = μ`` when
    ``sample=False``)."""

    def __init__(self, resolution: int = 64, channels: int = 3, attr_dim: int = 128, width: int = 32,
                 max_width: int = 256, hidden: int = 512) -> None:
        super().__init__()
        self.trunk = _Trunk(resolution, channels, width, max_width)
        self.to_vector = nn.Sequential(nn.Conv2d(self.trunk.out_channels, hidden, 4, 1, 0), nn.Tanh(), nn.Flatten())
        self.mu = nn.Linear(hidden, attr_dim)
        self.logvar = nn.Linear(hidden, attr_dim)
        self.resolution, self.attr_dim = resolution, attr_dim
        init_dcgan(self)

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.to_vector(self.trunk(x))
        mu, logvar = self.mu(h), self.logvar(h)
        if not sample:
            return mu, mu, logvar
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), mu, logvar


class Discriminator(nn.Module):
    """D: image → ``(logit [B], f_D [B, feature_dim])``; ``f_D`` is the last layer before the logit."""

    def __init__(self, resolution: int = 64, channels: int = 3, width: int = 32, max_width: int = 256,
                 feature_dim: int = 512) -> None:
        super().__init__()
        self.trunk = _Trunk(resolution, channels, width, max_width)
        self.features = nn.Sequential(nn.Conv2d(self.trunk.out_channels, feature_dim, 4, 1, 0), nn.Flatten())
        self.logit = nn.Linear(feature_dim, 1)
        self.resolution, self.feature_dim = resolution, feature_dim
        init_dcgan(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(self.trunk(x))
        return self.logit(f).squeeze(1), f


class Generator(nn.Module):
    """G: ``(f_I [B, identity_dim], f_A [B, attr_dim])`` → list of images, one per scale
    ``4, 8, …, resolution`` (``[B, C, s, s]`` in [-1, 1]); the last is the output face ``x'``."""

    def __init__(self, identity_dim: int, attr_dim: int = 128, resolution: int = 64, channels: int = 3,
                 width: int = 32, max_width: int = 256) -> None:
        super().__init__()
        n = _levels(resolution)
        # generator widths mirror the encoder's: widest at 4x4, `width` at full resolution
        widths = [_width(n - 1 - i, width, max_width) for i in range(n)] + [width]
        self.stem = nn.Sequential(nn.ConvTranspose2d(identity_dim + attr_dim, widths[0], 4, 1, 0),
                                  nn.LeakyReLU(0.2, inplace=True),
                                  nn.Conv2d(widths[0], widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.LeakyReLU(0.2, inplace=True))
        self.blocks = nn.ModuleList()
        for i in range(1, n + 1):
            self.blocks.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(widths[i], widths[i], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[i]),
                nn.LeakyReLU(0.2, inplace=True)))
        self.to_rgb = nn.ModuleList(nn.Sequential(nn.Conv2d(w, channels, 1), nn.Tanh()) for w in widths)
        self.identity_dim, self.attr_dim, self.resolution, self.channels = identity_dim, attr_dim, resolution, channels
        init_dcgan(self)

    def forward(self, identity: torch.Tensor, attributes: torch.Tensor, all_scales: bool = True
                ) -> list[torch.Tensor]:
        if identity.shape[1] != self.identity_dim or attributes.shape[1] != self.attr_dim:
            raise ValueError(f"Generator: expected identity [B, {self.identity_dim}] and attributes "
                             f"[B, {self.attr_dim}], got {tuple(identity.shape)} and {tuple(attributes.shape)}")
        h = self.stem(torch.cat([identity, attributes], 1)[:, :, None, None])
        out = [self.to_rgb[0](h)] if all_scales else []
        for i, block in enumerate(self.blocks, 1):
            h = block(h)
            if all_scales or i == len(self.blocks):
                out.append(self.to_rgb[i](h))
        return out

    def synthesize(self, identity: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """The full-resolution face only (no lower-scale to-RGB passes)."""
        return self.forward(identity, attributes, all_scales=False)[-1]


class IdentityGAN(nn.Module):
    """Gaussian ``z [B, noise_dim]`` → unit identity vector ``[B, identity_dim]`` (``generator``), and an MLP
    ``discriminator`` on identity vectors (logit). Trained with the standard GAN loss on the data's identity
    vectors ``f_I(x)`` (seed 003 §4.1.2)."""

    def __init__(self, identity_dim: int, noise_dim: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(noise_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                       nn.LeakyReLU(0.2), nn.Linear(hidden, identity_dim))
        self.discriminator = nn.Sequential(nn.Linear(identity_dim, hidden), nn.LeakyReLU(0.2),
                                           nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        self.identity_dim, self.noise_dim = identity_dim, noise_dim

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        dev = next(self.parameters()).device
        z = torch.randn(n, self.noise_dim, generator=generator, device=dev if generator is None else "cpu").to(dev)
        return F.normalize(self.generator(z), dim=1)

    def judge(self, identity: torch.Tensor) -> torch.Tensor:
        return self.discriminator(identity).squeeze(1)
