"""What the zoo samplers share: the distributed arguments' checks, the checkpoint-state identity and the
per-draw augmentation seed.

Per-draw seeds (exact mid-epoch resume of augmentation): every index a zoo sampler yields is a :class:`Draw`,
an ``int`` that also carries ``seed = mix(sampler seed, epoch, rank, position in the epoch)``. Datasets reseed
their augmentation with it (:func:`zoo.datamodules.transforms.seed_augment`), so the random crop of a draw
depends on where it sits in the epoch, not on which DataLoader worker happened to load it or on how many
samples that worker had augmented before: a run resumed mid-epoch (same seed, epoch and position, any
number of workers) augments its remaining draws exactly as the uninterrupted run does.

Errors name the ``sampler.<key>`` config key (zoo.checks message shape). Each sampler's ``state_dict`` carries
``"sampler": <class name>``, and :func:`check_state_kind` refuses to load another sampler's state: resuming an
LPBB checkpoint with ``sampler=uniform`` would otherwise drop the loss table without a word.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from zoo.checks import check_int, invalid

_MASK64 = (1 << 64) - 1


class Draw(int):
    """A dataset index (behaves as the ``int``) that carries the augmentation seed of this draw."""

    seed: int

    def __new__(cls, index: int, seed: int) -> "Draw":
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):  # DataLoader workers receive the indices pickled
        return (Draw, (int(self), self.seed))

    def __repr__(self) -> str:
        return f"Draw({int(self)}, seed={self.seed})"


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014), a cheap bijective mixer, on uint64 arrays (wrapping)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def draw_seeds(seed: int, epoch: int, rank: int, positions: np.ndarray) -> np.ndarray:
    """63-bit seeds (int64 array) of the draws at ``positions`` of ``epoch`` on ``rank``: nested SplitMix64."""
    h = np.zeros(1, dtype=np.uint64)
    for v in (seed, epoch, rank):
        h = _splitmix64(h ^ np.uint64(int(v) & _MASK64))
    h = _splitmix64(h ^ np.asarray(positions, dtype=np.uint64))
    return (h >> np.uint64(1)).astype(np.int64)


def draw_seed(seed: int, epoch: int, rank: int, position: int) -> int:
    """The seed of one draw (see :func:`draw_seeds`)."""
    return int(draw_seeds(seed, epoch, rank, np.array([position]))[0])


def draws(indices: list[int], seed: int, epoch: int, rank: int, start: int) -> list[Draw]:
    """``indices`` (positions ``start``, ``start + 1``, ... of the epoch on ``rank``) as :class:`Draw` objects."""
    seeds = draw_seeds(seed, epoch, rank, np.arange(start, start + len(indices), dtype=np.uint64)).tolist()
    return [Draw(i, sd) for i, sd in zip(indices, seeds)]


def check_distributed_args(batch_size: Any, seed: Any, rank: Any, world_size: Any) -> None:
    """batch_size >= 1, world_size >= 1, seed >= 0 and 0 <= rank < world_size, all integers."""
    check_int("sampler.batch_size", batch_size)
    world_size = check_int("sampler.world_size", world_size)
    check_int("sampler.seed", seed, low=0)
    check_int("sampler.rank", rank, low=0, high=world_size - 1)


def state_kind(state: Mapping[str, Any]) -> str:
    """Class name of the sampler that wrote ``state`` (older checkpoints: recognised by their keys)."""
    if "sampler" in state:
        return str(state["sampler"])
    if "loss" in state and "seen" in state:
        return "LPBBSampler"
    if "p" in state and "k" in state:
        return "PKSampler"
    if {"seed", "epoch", "position"} <= set(state):
        return "UniformSampler"
    return "an unknown sampler"


def describe(kind: str) -> str:
    name = CONFIG_NAMES.get(kind)
    return f"{kind} (sampler={name})" if name else kind


def check_state_kind(state: Any, expected: str) -> None:
    """ValueError naming ``sampler`` when the checkpoint's sampler state was written by another sampler class."""
    if not isinstance(state, Mapping):
        raise invalid("sampler", CONFIG_NAMES.get(expected, expected),
                      f"the checkpoint's sampler state is a {type(state).__name__}, not a dict", "a sampler state dict")
    got = state_kind(state)
    if got != expected:
        extra = " (its per-sample loss table would be dropped)" if got == "LPBBSampler" else ""
        raise invalid("sampler", CONFIG_NAMES.get(expected, expected),
                      f"the checkpoint was trained with {describe(got)}{extra} but this run uses {describe(expected)}",
                      f"the checkpoint's sampler to resume it (sampler={CONFIG_NAMES.get(got, '...')}), or a new run "
                      f"without ckpt_path to change the sampler")
