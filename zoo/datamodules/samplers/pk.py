"""P×K batch sampler for metric learning (FaceNet / OpenFace: P = 20 identities × K = 15 images), distributed-aware.

Every batch holds P distinct identities with K images each, ordered identity by identity. Under DDP each
global step draws ``world_size * P`` distinct identities from a generator seeded identically on every rank
(``seed``, epoch); rank r takes identities ``[r*P, (r+1)*P)``. So no identity is on two ranks in the same
step — which pytorch-metric-learning's ``MPerClassSampler`` does not guarantee — and ranks never communicate.

Per epoch (generator ``numpy.random.default_rng([seed, epoch])``):

* identities are drawn without replacement per step with probability proportional to their image count,
  so an epoch visits images roughly uniformly;
* each identity keeps a shuffled queue of its images; a draw takes the next K (refilling with a new
  permutation when exhausted), so an identity's images are cycled through before any repeats;
* ``len(sampler)`` = steps per epoch = ``batches_per_epoch`` if set, else
  ``max(1, eligible_images // (P * K * world_size))`` (the same on every rank).

Identities with fewer than K images (``small_identities``):

* ``replace`` (default): all their images plus ``K - n`` drawn again with replacement. An identity with a
  single image cannot give a positive pair, so it is an error naming the identity and the fixes.
* ``skip``: excluded from sampling; a warning states how many identities/images were skipped
  (also in :attr:`PKSampler.skipped`).

Dataset interface: ``dataset.identities`` (1-D int array or LongTensor: the label of every sample, read
without loading images) is required; ``dataset.identity_names`` (label -> name) is optional, used in messages.

Checkpointing: :meth:`state_dict` holds epoch and position (steps of this epoch already trained);
after :meth:`load_state_dict` iteration continues with exactly the batches an uninterrupted run would have
produced. The trained count comes from :meth:`mark_trained`, which the ``LossFeedback`` callback
(configs/callbacks/default.yaml) calls after every batch; without it the position counts batches handed to the
DataLoader, which prefetches, so a mid-epoch resume would skip the prefetched batches (never repeat them).
Lightning calls :meth:`set_epoch` each epoch; iterating again without it moves to the next epoch.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from zoo.checks import check_choice, check_int, invalid
from zoo.datamodules.samplers._common import check_distributed_args, check_state_kind, draws

SMALL_IDENTITY_MODES = ("replace", "skip")


def dataset_identities(dataset: Any) -> np.ndarray:
    """The ``identities`` label array of an identity dataset (error naming the class when absent)."""
    labels = getattr(dataset, "identities", None)
    if labels is None:
        raise ValueError(
            f"{type(dataset).__name__} has no 'identities' attribute: the P×K sampler needs every sample's identity "
            f"label without loading images (dataset.identities: 1-D int array / LongTensor of length len(dataset)); "
            f"use an identity dataset of zoo.datamodules.identity or add the attribute")
    labels = labels.numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{type(dataset).__name__}.identities must be a 1-D integer array, got "
                         f"{labels.dtype} {labels.shape}")
    try:
        n = len(dataset)
    except TypeError:
        n = labels.size
    if labels.size != n:
        raise ValueError(f"{type(dataset).__name__}.identities has {labels.size} labels for {n} samples")
    return labels.astype(np.int64, copy=False)


class PKSampler(Sampler[list[int]]):
    """Batches of P identities × K images; see the module docstring.

    Args:
        dataset: identity dataset with ``identities`` (and optionally ``identity_names``).
        batch_size: P*K (from the datamodule); P = batch_size // K when ``p`` is None.
        seed, rank, world_size: from the datamodule (every rank must get the same seed).
        p, k: identities per batch and images per identity (OpenFace: 20, 15).
        small_identities: ``replace`` or ``skip`` (identities with fewer than K images).
        batches_per_epoch: fixed number of steps per epoch (OpenFace's epochSize), default from the data size.
    """

    is_batch_sampler = True

    def __init__(self, dataset: Any, batch_size: int | None = None, seed: int = 0, rank: int = 0,
                 world_size: int = 1, p: int | None = None, k: int = 15, small_identities: str = "replace",
                 batches_per_epoch: int | None = None) -> None:
        k = check_int("sampler.k", k)
        if p is None:
            if batch_size is None:
                raise invalid("sampler.p", None, "without data.batch_size it cannot be derived", "sampler.p or the "
                              "datamodule's batch_size (= p * k)")
            if batch_size % k:
                raise invalid("data.batch_size", batch_size, f"not divisible by sampler.k={k}: the P×K sampler "
                              "builds batches of p*k images", f"a multiple of k (e.g. {max(1, batch_size // k) * k}) "
                              "or another sampler.k")
            p = batch_size // k
        elif batch_size is not None and p * k != batch_size:
            raise invalid("sampler.p", p, f"p*k = {p}*{k} = {p * k} differs from data.batch_size={batch_size}",
                          "data.batch_size = p * k (set one of them accordingly)")
        check_int("sampler.p", p)
        check_choice("sampler.small_identities", small_identities, SMALL_IDENTITY_MODES)
        check_distributed_args(batch_size or p * k, seed, rank, world_size)
        if batches_per_epoch is not None:
            check_int("sampler.batches_per_epoch", batches_per_epoch)
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, int(seed), rank, world_size
        self.small_identities = small_identities
        self.batches_per_epoch = batches_per_epoch
        self.epoch, self.position = 0, 0  # position: steps of this epoch handed to the DataLoader
        self._trained, self._tracking = 0, False  # steps reported trained by mark_trained()

        groups, counts, keep = self._usable_identities(dataset)
        self.groups = [groups[u] for u in np.flatnonzero(keep)]
        self.counts = np.asarray([g.size for g in self.groups], dtype=np.int64)
        need = self.world_size * self.p
        if len(self.groups) < need:
            raise self._too_few_identities(dataset, counts, need)
        self.num_images = int(self.counts.sum())

    def _usable_identities(self, dataset: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """(dataset indices per identity, image count per identity, which identities to sample) under
        ``small_identities``; fills :attr:`skipped`, warns about skipped ones, refuses single-image ones (replace)."""
        labels = dataset_identities(dataset)
        k, small_identities = self.k, self.small_identities
        names = getattr(dataset, "identity_names", None)
        uniq, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(counts)[:-1]) if labels.size else []

        def name(u: int) -> str:
            lab = int(uniq[u])
            return f"'{names[lab]}' (label {lab})" if names is not None and 0 <= lab < len(names) else f"label {lab}"

        small = np.flatnonzero(counts < k)
        self.skipped = {"identities": 0, "images": 0}
        if small_identities == "skip":
            keep = counts >= k
            if small.size:
                self.skipped = {"identities": int(small.size), "images": int(counts[small].sum())}
                warnings.warn(f"PKSampler: skipped {small.size} of {uniq.size} identities ({int(counts[small].sum())} "
                              f"images) with fewer than k={k} images (sampler.small_identities=skip), e.g. "
                              f"{', '.join(name(u) for u in small[:3])}", stacklevel=3)
        else:
            keep = np.ones(uniq.size, dtype=bool)
            single = np.flatnonzero(counts == 1) if k > 1 else np.empty(0, dtype=np.int64)
            if single.size:
                raise invalid(
                    "sampler.small_identities", small_identities, f"{single.size} identities have a single image, "
                    f"e.g. {', '.join(name(u) for u in single[:3])}, and cannot form positive pairs (sampler.k={k})",
                    "sampler.small_identities=skip (drops identities with fewer than k images, count is logged) or "
                    "data.min_images_per_identity=2 (drops single-image identities, count is logged)")
        return groups, counts, keep

    def _too_few_identities(self, dataset: Any, counts: np.ndarray, need: int) -> ValueError:
        """The error for fewer usable identities than one step needs, with the fix that helps."""
        where = (f"each step needs world_size*p = {self.world_size}*{self.p} = {need} distinct identities but "
                 f"{type(dataset).__name__} has {len(self.groups)} usable ones (of {counts.size})")
        if self.small_identities == "replace":
            return invalid("sampler.p", self.p, where, "lower data.batch_size or sampler.p, or more identities")
        ranked = np.sort(counts)[::-1]
        k_fit = int(ranked[need - 1]) if need <= ranked.size else 0  # largest k with >= need identities
        hint = (f"e.g. sampler.k={k_fit} with data.batch_size={self.p * k_fit} ({need} identities have >= {k_fit} "
                f"images)" if k_fit >= 2 else f"fewer than {need} identities have 2 or more images")
        return invalid("sampler.k", self.k, f"{where}: only {int((counts >= self.k).sum())} identities have "
                       f">= k={self.k} images and sampler.small_identities=skip drops the others",
                       f"a lower sampler.k at the same sampler.p ({hint}), or sampler.small_identities=replace, "
                       f"or a lower sampler.p")

    # ------------------------------------------------------------------------------------------ sampling
    def __len__(self) -> int:
        if self.batches_per_epoch is not None:
            return self.batches_per_epoch
        return max(1, self.num_images // (self.p * self.k * self.world_size))

    def _take(self, rng: np.random.Generator, queues: list[list[int]], u: int) -> list[int]:
        g = self.groups[u]
        if g.size < self.k:  # replace mode: every image once, the rest drawn with replacement
            return g[rng.permutation(g.size)].tolist() + g[rng.integers(0, g.size, self.k - g.size)].tolist()
        q = queues[u]
        if len(q) < self.k:  # refill: the remaining ones first, then a new permutation without them
            rest = set(q)
            q += [int(x) for x in g[rng.permutation(g.size)] if int(x) not in rest]
        out, queues[u] = q[: self.k], q[self.k:]
        return out

    def epoch_batches(self, epoch: int) -> list[list[list[int]]]:
        """All steps of ``epoch``: [step][rank] -> list of P*K dataset indices (identical on every rank)."""
        rng = np.random.default_rng([self.seed, epoch])
        prob = self.counts / self.counts.sum()
        queues: list[list[int]] = [[] for _ in self.groups]
        steps = []
        for _ in range(len(self)):
            ids = rng.choice(len(self.groups), size=self.world_size * self.p, replace=False, p=prob)
            per_rank = []
            for r in range(self.world_size):
                batch: list[int] = []
                for u in ids[r * self.p:(r + 1) * self.p]:
                    batch += self._take(rng, queues, int(u))
                per_rank.append(batch)
            steps.append(per_rank)
        return steps

    def __iter__(self) -> Iterator[list[int]]:
        if self.position >= len(self):  # epoch handed out and set_epoch not called: next epoch
            self.set_epoch(self.epoch + 1)
        steps = self.epoch_batches(self.epoch)
        self.position = self._position()
        while self.position < len(steps):
            batch = draws(steps[self.position][self.rank], self.seed, self.epoch, self.rank,
                          self.position << 32)  # draw j of step s: position (s << 32) + j
            self.position += 1
            yield batch

    # ------------------------------------------------------------------------------------------ state
    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; a new epoch restarts at position 0, the current one keeps it."""
        if int(epoch) != self.epoch:
            self.epoch, self.position, self._trained = int(epoch), 0, 0

    def mark_trained(self, batches: int) -> None:
        """``batches`` steps of the current epoch are trained (zoo.callbacks.loss_feedback.LossFeedback calls this
        after every batch), so checkpoints hold the trained position rather than the prefetched one."""
        self._tracking = True
        self._trained = min(int(batches), len(self))

    def _position(self) -> int:
        return self._trained if self._tracking else self.position

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": type(self).__name__, "epoch": self.epoch, "position": self._position(), "seed": self.seed, "p": self.p, "k": self.k,
                "world_size": self.world_size, "num_images": self.num_images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore epoch and position. If seed, p, k, the number of processes or the training data changed, the
        saved position is meaningless: a warning says so and the saved epoch restarts from its first step."""
        check_state_kind(state, "PKSampler")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._trained, self._tracking = self.position, False
        changed = [f"{key}: {state[key]} -> {getattr(self, key)}" for key in ("seed", "p", "k", "world_size", "num_images")
                   if key in state and state[key] != getattr(self, key)]
        if changed:
            warnings.warn(f"PKSampler: the checkpoint's sampler differs ({'; '.join(changed)}), so its position cannot "
                          f"be resumed exactly; epoch {self.epoch} restarts from its first step", stacklevel=2)
            self.position = self._trained = 0
