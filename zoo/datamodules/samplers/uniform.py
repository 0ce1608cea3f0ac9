"""Uniform shuffling without replacement, distributed-aware and checkpointable (resumable mid-epoch).

Epoch e is the permutation ``torch.randperm(n)`` of a generator seeded with ``seed + e`` (the recipe of
``torch.utils.data.DistributedSampler``). For ``world_size`` ranks the permutation is padded by repeating
its head up to a multiple of ``world_size`` (default, like DistributedSampler: every rank gets
ceil(n / world) samples, a few samples appear twice per epoch) or, with ``drop_last=True``, cut to one
(floor(n / world) each, the tail of the permutation is unused this epoch). Rank r takes the
interleaved share ``perm[r::world_size]``: the shares are disjoint and together cover the dataset.

``state_dict()`` = (seed, epoch, position); position is the number of this rank's samples of the epoch
already trained (reported by :meth:`mark_trained`, which :class:`zoo.callbacks.loss_feedback.LossFeedback`
calls after every batch) or, without that report, already handed to the DataLoader.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator, Sized

import torch
from torch.utils.data import Sampler

from zoo.checks import check_bool, invalid
from zoo.datamodules.samplers._common import check_distributed_args, check_state_kind, draws


class UniformSampler(Sampler[int]):
    """Uniform sampling without replacement, each rank a disjoint equal-length share.

    Args:
        dataset: the training dataset (only ``len(dataset)`` is used).
        batch_size: per-rank batch size of the DataLoader (for :meth:`mark_trained`).
        seed: epoch e shuffles with seed ``seed + e``.
        rank, world_size: this process's rank and the number of ranks.
        drop_last: False (default) pads the permutation to a multiple of ``world_size``; True cuts it.
    """

    def __init__(self, dataset: Sized, batch_size: int = 1, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        n = len(dataset)
        check_distributed_args(batch_size, seed, rank, world_size)
        check_bool("sampler.drop_last", drop_last)
        if n < (world_size if drop_last else 1):
            raise invalid("sampler", "uniform", f"the training dataset has {n} samples",
                          f"at least {world_size if drop_last else 1} sample(s)")
        self.n = n
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_last = drop_last
        self.num_samples = n // world_size if drop_last else -(-n // world_size)
        self.epoch = 0
        self._yielded = 0  # samples of this epoch handed to the DataLoader
        self._trained = 0  # samples of this epoch reported trained
        self._tracking = False

    def indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's share of epoch ``epoch`` (default: the current one) as an int64 tensor."""
        g = torch.Generator().manual_seed(self.seed + (self.epoch if epoch is None else int(epoch)))
        perm = torch.randperm(self.n, generator=g)
        total = self.num_samples * self.world_size
        if total > self.n:
            perm = perm.repeat(-(-total // self.n))
        return perm[:total][self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        if self._yielded >= self.num_samples:  # epoch handed out and set_epoch not called: next epoch
            self.set_epoch(self.epoch + 1)
        start = self._position()
        share = draws(self.indices()[start:].tolist(), self.seed, self.epoch, self.rank, start)
        self._yielded = start
        for i in share:
            self._yielded += 1
            yield i

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch; the same epoch again keeps the position."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._yielded = self._trained = 0

    def mark_trained(self, batches: int) -> None:
        """``batches`` batches of the current epoch are trained on this rank."""
        self._tracking = True
        self._trained = min(int(batches) * self.batch_size, self.num_samples)

    def _position(self) -> int:
        return self._trained if self._tracking else self._yielded

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": type(self).__name__, "seed": self.seed, "epoch": self.epoch, "position": self._position(), "n": self.n,
                "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_kind(state, "UniformSampler")
        missing = [k for k in ("seed", "epoch", "position") if k not in state]
        if missing:
            raise ValueError(f"UniformSampler.load_state_dict: checkpoint state lacks keys {missing}")
        if "n" in state and int(state["n"]) != self.n:
            raise ValueError(f"UniformSampler.load_state_dict: the checkpoint was written for {state['n']} "
                             f"training samples, the training set has {self.n}; resume with the same data")
        position = int(state["position"])
        if int(state.get("world_size", self.world_size)) != self.world_size:
            position = position * int(state["world_size"]) // self.world_size
            warnings.warn(f"UniformSampler: resuming with world_size {self.world_size} instead of "
                          f"{state['world_size']}: the epoch's permutation is re-split; the position is "
                          f"rescaled to {position}", stacklevel=2)
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._yielded = self._trained = min(position, self.num_samples)
