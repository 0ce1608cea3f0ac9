"""What the zoo samplers share: the distributed arguments' checks and the checkpoint-state identity.

Errors name the ``sampler.<key>`` config key (zoo.checks message shape). Each sampler's ``state_dict`` carries
``"sampler": <class name>``, and :func:`check_state_kind` refuses to load another sampler's state: resuming an
LPBB checkpoint with ``sampler=uniform`` would otherwise drop the loss table without a word.
"""
from __future__ import annotations

from typing import Any, Mapping

from zoo.checks import check_int, invalid

#: sampler class -> its configs/sampler name
CONFIG_NAMES = {"UniformSampler": "uniform", "LPBBSampler": "lpbb", "PKSampler": "pk"}


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
