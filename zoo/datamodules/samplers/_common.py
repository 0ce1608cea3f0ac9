"""Argument checks shared by the zoo samplers (errors name the ``sampler.<key>`` config key)."""
from __future__ import annotations

import numbers
from typing import Any


def sampler_error(key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"sampler.{key}: got {value!r}, expected {expected}")


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def check_distributed_args(batch_size: Any, seed: Any, rank: Any, world_size: Any) -> None:
    """batch_size >= 1, world_size >= 1, seed >= 0 and 0 <= rank < world_size, all integers."""
    for key, value in (("batch_size", batch_size), ("world_size", world_size)):
        if not _is_int(value) or value < 1:
            raise sampler_error(key, value, "an integer >= 1")
    if not _is_int(seed) or seed < 0:
        raise sampler_error("seed", seed, "an integer >= 0")
    if not _is_int(rank) or not 0 <= rank < world_size:
        raise sampler_error("rank", rank, f"an integer in [0, world_size={world_size})")
