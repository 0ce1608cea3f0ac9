"""Backbones behind one factory: ``create_backbone(name, in_chans=...)``.

A backbone maps an image batch ``[B, C, H, W]`` to pooled features ``[B, F]`` and exposes
``num_features = F`` (the convention of a ``timm`` model created with ``num_classes=0``).

Names resolve in this order:

1. the zoo's own nets, registered with :func:`register_backbone` (``"fuhl2019"`` below; other modules
   such as :mod:`zoo.models.nn4small` register theirs when imported — :data:`PLUGIN_MODULES` are imported
   lazily on first lookup so their names are always listed);
2. any ``timm`` model name (``timm.list_models()``), built with ``pretrained=False``, ``in_chans`` and
   ``num_classes=0`` (timm's global pooling, no classifier).

Unknown names raise a ValueError listing the registered names and pointing to ``timm.list_models()``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

import torch
from torch import nn

BackboneFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, BackboneFactory] = {}
#: modules that register backbones when imported (imported lazily, once, on the first lookup)
PLUGIN_MODULES: tuple[str, ...] = ("zoo.models.nn4small",)
_plugins_loaded = False


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


def register_backbone(name: str, fn: BackboneFactory) -> BackboneFactory:
    """Register ``fn(in_chans=..., **kwargs) -> nn.Module`` (with ``num_features``) under ``name``.

    Returns ``fn``. Registering a name again with a different factory (another qualified name) is an error.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"backbone name must be a non-empty string, got {name!r}")
    old = _REGISTRY.get(name)
    if old is not None and _qualname(old) != _qualname(fn):
        raise ValueError(f"backbone {name!r} is already registered ({old!r})")
    _REGISTRY[name] = fn
    return fn


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ImportError:  # a plugin that is not part of this installation
            pass


def registered_backbones() -> list[str]:
    """Names of the zoo's own backbones (timm names come on top of these)."""
    _load_plugins()
    return sorted(_REGISTRY)


def create_backbone(name: str, in_chans: int = 1, **kwargs: Any) -> nn.Module:
    """Build backbone ``name`` for ``in_chans`` input channels; the module has ``num_features``."""
    _load_plugins()
    if name in _REGISTRY:
        net = _REGISTRY[name](in_chans=in_chans, **kwargs)
    else:
        import timm

        if not timm.is_model(name):
            raise ValueError(
                f"model.backbone: unknown backbone {name!r}; expected one of the zoo's backbones "
                f"{registered_backbones()} or a timm model name (see timm.list_models(), e.g. 'resnet18')")
        net = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0, **kwargs)
        # nets with a pre-logits layer (MobileNetV3, EfficientNet-style heads in recent timm) return
        # head_hidden_size features, not num_features, when num_classes=0
        hidden = getattr(net, "head_hidden_size", None)
        if isinstance(hidden, int) and hidden > 0:
            net.num_features = hidden
    if not isinstance(getattr(net, "num_features", None), int):
        raise ValueError(f"backbone {name!r} must expose an integer 'num_features' attribute")
    return net


# ---------------------------------------------------------------------------------------------------
# seed 002: Fuhl & Kasneci, "Learning to Validate the Quality of Detected Landmarks", ICMV 2019, Fig. 3
# ---------------------------------------------------------------------------------------------------
def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """k×k convolution (padding k//2, no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions, each followed by BN and ReLU (the paper puts BN+ReLU after every conv):

        y = ReLU(BN(conv2(ReLU(BN(conv1(x)))))) + shortcut(x)

    ``shortcut`` is the identity, or a strided 1×1 conv + BN when the channels or the stride change.
    """

    def __init__(self, cin: int, cout: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride)
        self.conv2 = conv_bn_relu(cout, cout, 3, 1)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + self.shortcut(x)


class Fuhl2019Net(nn.Module):
    """The seed-002 landmark network's convolutional trunk (Fig. 3 of the paper).

    initial conv 5×5/2 (``stem`` channels) + BN + ReLU -> max pool 2×2 -> residual blocks of 64, 128 and
    256 channels (stride 2 each) -> adaptive average pool to ``pool × pool`` -> flatten.
    Features: ``256·pool²`` (2,304 for the default pool 3; a 96-px input gives a 3×3 map already).
    The paper's two fully connected layers are :class:`zoo.models.heads.LandmarkHead`.
    Kernel sizes and strides are not given in the paper's text; these make a 96-px crop cost about
    0.4 s per batch of 64 on two CPU cores.
    """

    def __init__(self, in_chans: int = 1, stem: int = 32, widths: tuple[int, ...] = (64, 128, 256),
                 pool: int = 3) -> None:
        super().__init__()
        if pool < 1:
            raise ValueError(f"fuhl2019 backbone: pool must be >= 1, got {pool}")
        self.stem = nn.Sequential(conv_bn_relu(in_chans, stem, 5, 2), nn.MaxPool2d(2))
        blocks, c = [], stem
        for w in widths:
            blocks.append(ResidualBlock(c, w, stride=2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.num_features = c * pool * pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.blocks(self.stem(x))), 1)


register_backbone("fuhl2019", Fuhl2019Net)
