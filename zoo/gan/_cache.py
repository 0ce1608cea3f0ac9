"""Where zoo.gan keeps what it derives from a generator (fitted encoders, directions)."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "ZOO_GAN_CACHE"


def default_cache_dir() -> Path:
    """``$ZOO_GAN_CACHE`` or ``~/.cache/zoo/gan``: where fitted encoders and directions are kept."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "zoo" / "gan").expanduser()
