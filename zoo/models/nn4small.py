"""FaceNet NN4-small (OpenFace ``nn4.small2``): a compact Inception network for 96×96 face crops.

Schroff, Kalenichenko, Philbin, "FaceNet: A unified embedding for face recognition and clustering",
CVPR 2015 (the NN4 Inception family, Table 2), in the reduced ``nn4.small2`` layout that OpenFace
(Amos, Ludwiczuk, Satyanarayanan, CMU-CS-16-118, 2016) trains on 96×96 aligned faces and that
Kortylewski et al. (seed 000/001) prime with 3DMM-synthetic faces.

Layout (input 96×96, feature-map sizes in brackets)::

    conv 7×7/2, 64, BN, ReLU [48] -> max 3×3/2 [24] -> conv 1×1, 64 -> conv 3×3, 192 -> max 3×3/2 [12]
    3a (1×1 64 | 3×3 96→128 | 5×5 16→32 | max→32)              -> 256   [12]
    3b (1×1 64 | 3×3 96→128 | 5×5 32→64 | L2-pool→64)           -> 320   [12]
    3c (        3×3 128→256/2 | 5×5 32→64/2 | max/2)             -> 640   [6]
    4a (1×1 256 | 3×3 96→192 | 5×5 32→64 | L2-pool→128)        -> 640   [6]
    4e (        3×3 160→256/2 | 5×5 64→128/2 | max/2)            -> 1024  [3]
    5a (1×1 256 | 3×3 96→384 | L2-pool→96)                       -> 736   [3]
    5b (1×1 256 | 3×3 96→384 | max→96)                           -> 736   [3]
    global average pool -> 736 features  (the FaceNet head adds Linear 736→128 and L2 normalisation)

The L2 ("p-norm", p = 2) pooling of FaceNet is ``sqrt(sum_{window} x^2)``, computed here as
``sqrt(k·avg_pool(x^2) + eps)`` (eps keeps the gradient finite at 0). Every convolution is followed by
batch normalisation and ReLU. Other input sizes work (the pooling is global); 96 is the reference size.

:class:`NN4Small` is a *backbone*: it returns pooled features ``[B, 736]`` and exposes ``num_features``
like a ``timm`` model created with ``num_classes=0``; importing this module registers it as ``"nn4small"``
in :mod:`zoo.models.backbones` (which imports it lazily on the first lookup).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.backbones import conv_bn_relu, register_backbone


class L2Pool2d(nn.Module):
    """FaceNet's L2 pooling: ``y = sqrt(sum_{k×k window} x^2)`` (zero padding)."""

    def __init__(self, kernel_size: int = 3, stride: int = 1, padding: int = 1, eps: float = 1e-6) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.eps = kernel_size, stride, padding, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k2 = self.kernel_size * self.kernel_size
        s = F.avg_pool2d(x * x, self.kernel_size, self.stride, self.padding, count_include_pad=True) * k2
        return torch.sqrt(s + self.eps)


class Inception(nn.Module):
    """One Inception module: concatenation of optional 1×1, 3×3 (with 1×1 reduce), 5×5 (with 1×1 reduce)
    and pooling (max or L2, optionally followed by a 1×1 projection) branches.

    With ``stride == 2`` the module halves the resolution (FaceNet's 3c/4e): the pooling branch then has no
    projection and the 1×1 branch is absent.
    """

    def __init__(self, cin: int, n1x1: int, r3: int, n3: int, r5: int, n5: int, pool: str, proj: int,
                 stride: int = 1) -> None:
        super().__init__()
        if pool not in ("max", "l2"):
            raise ValueError(f"Inception pool must be 'max' or 'l2', got {pool!r}")
        self.b1 = conv_bn_relu(cin, n1x1, 1) if n1x1 else None
        self.b3 = nn.Sequential(conv_bn_relu(cin, r3, 1), conv_bn_relu(r3, n3, 3, stride)) if n3 else None
        self.b5 = nn.Sequential(conv_bn_relu(cin, r5, 1), conv_bn_relu(r5, n5, 5, stride)) if n5 else None
        pool_layer: nn.Module = (nn.MaxPool2d(3, stride, 1) if pool == "max" else L2Pool2d(3, stride, 1))
        self.bp = nn.Sequential(pool_layer, conv_bn_relu(cin, proj, 1)) if proj else pool_layer
        self.out_channels = n1x1 + n3 + n5 + (proj if proj else cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in (self.b1, self.b3, self.b5) if b is not None]
        outs.append(self.bp(x))
        return torch.cat(outs, dim=1)


class NN4Small(nn.Module):
    """OpenFace nn4.small2 trunk: image ``[B, C, H, W]`` -> pooled features ``[B, 736]`` (see module doc)."""

    def __init__(self, in_chans: int = 3, drop_rate: float = 0.0) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ValueError(f"nn4small: in_chans must be 1 or 3, got {in_chans!r}")
        self.stem = nn.Sequential(
            conv_bn_relu(in_chans, 64, 7, 2), nn.MaxPool2d(3, 2, 1),
            conv_bn_relu(64, 64, 1), conv_bn_relu(64, 192, 3), nn.MaxPool2d(3, 2, 1))
        blocks = [
            Inception(192, 64, 96, 128, 16, 32, "max", 32),            # 3a -> 256
            Inception(256, 64, 96, 128, 32, 64, "l2", 64),             # 3b -> 320
            Inception(320, 0, 128, 256, 32, 64, "max", 0, stride=2),   # 3c -> 640
            Inception(640, 256, 96, 192, 32, 64, "l2", 128),           # 4a -> 640
            Inception(640, 0, 160, 256, 64, 128, "max", 0, stride=2),  # 4e -> 1024
            Inception(1024, 256, 96, 384, 0, 0, "l2", 96),             # 5a -> 736
            Inception(736, 256, 96, 384, 0, 0, "max", 96),             # 5b -> 736
        ]
        self.blocks = nn.Sequential(*blocks)
        self.num_features = blocks[-1].out_channels
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``[B, 736, H/32, W/32]`` (3×3 at 96×96)."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.forward_features(x).mean(dim=(2, 3)))


def nn4small(in_chans: int = 3, drop_rate: float = 0.0) -> NN4Small:
    """Factory used by the backbone registry (``create_backbone("nn4small", in_chans)``)."""
    return NN4Small(in_chans=in_chans, drop_rate=drop_rate)


register_backbone("nn4small", nn4small)
