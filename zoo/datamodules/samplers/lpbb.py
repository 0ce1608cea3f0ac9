"""Loss Probability based Batch Balancing (LPBB), distributed-aware and checkpointable.

Fuhl & Kasneci, "Learning to Validate the Quality of Detected Landmarks", ICMV 2019 (seed 002), Eq. 1:

    B_j = S(k | sum_{i=1}^{k} Loss_i >= P([0; sum_{i=1}^{n} Loss_i]))

the j-th sample of a batch is the *smallest* k whose cumulative loss reaches a value u drawn uniformly
from [0, sum Loss]; draws are with replacement, so P(k) = Loss_k / sum_i Loss_i.

Implementation
--------------
The per-sample weights live in the leaves of a complete binary *sum tree* (heap layout, numpy float64).
Searching for the smallest k with cumsum_k >= u is a descent from the root (go left when u <= sum of the
left subtree, otherwise subtract it and go right): the same answer as ``torch.searchsorted(cumsum, u)``
(``right=False``) but without ever materialising the cumulative sum. A draw of m indices costs
O(m log n) and an update of m losses O(m log n) (only the m leaf-to-root paths are recomputed), so the
table never needs an O(n) rebuild. ``benchmarks/sampler.py`` measures it at n = 10^6.
u is drawn from (0, sum] rather than [0, sum] so that u = 0 can never select a leading zero-loss sample.

Modes
-----
``"online"`` (the paper's BBO): the table holds the last training loss of every sample, fed by
:class:`zoo.callbacks.loss_feedback.LossFeedback` after each trained batch.
``"refresh"`` (the paper's BB): in addition, every ``refresh_every`` fraction of an epoch (paper: 0.1) the
callback recomputes the loss of every training sample with the model in eval mode.

Extensions (off by default; weights are what the tree stores, probabilities are weights / their sum)
----------------------------------------------------------------------------------------------------
* ``floor`` f >= 0 (loss units):        w_i = max(Loss_i, f)            -> no seen sample starves.
* ``temperature`` T > 0:                w_i = max(Loss_i, f) ** (1 / T)  (T < 1 sharpens, T > 1 flattens;
  seed-002's raw losses are within ~3x of each other, which keeps plain LPBB close to uniform).
* ``uniform_mix`` lambda in [0, 1]:     p_i = (1 - lambda) * w_i / sum_j w_j + lambda / n.
* ``initial_loss`` (weight of samples that have no loss yet): ``"mean"`` (default) = the mean weight of
  the samples seen so far, so that every sample starts equal (epoch 0 starts uniform) and unseen samples
  keep an average share; ``"max"`` = the largest seen weight (explore unseen samples first); a number c
  = the fixed weight max(c, f) ** (1/T). (With no sample seen yet every choice gives a uniform draw.)
  A fixed c is scale dependent: e.g. with c = 1 and pixel L2 losses of ~200, after the first batch its 64
  samples hold 64*200 / (64*200 + 1143) = 92% of a 1,207-sample table's mass and the rest starve in
  online mode; hence ``"mean"``.

Distributed
-----------
Every rank draws the same *global* sequence for each step: ``world_size * b`` draws (b = this step's
per-rank batch) from a numpy generator seeded with (seed, epoch, step); rank r takes the interleaved
share ``global[r::world_size]`` (the convention of ``torch.utils.data.DistributedSampler``). The loss
table is identical on every rank because the callback all-gathers (index, loss) pairs and every rank
calls :meth:`LPBBSampler.update` with the same gathered tensors. Draws happen lazily when the DataLoader
asks for indices: with ``num_workers = w > 0`` that is ``prefetch_factor * w`` batches ahead of training
(those draws do not see the losses of the batches in between); with ``num_workers = 0`` right before the
batch is trained (Lightning does not prefetch loaders that have a length). The lag is the same on every
rank when all ranks use the same DataLoader settings, so the global sequences stay identical.

Checkpointing
-------------
``state_dict()`` holds the loss table, seen mask, (seed, epoch, step) -- which *is* the RNG state, every
step's generator is re-derived from it -- and the global draws already handed to the DataLoader but not
yet trained. With :meth:`mark_trained` fed by the callback, a resumed run replays those pending draws and
then continues exactly like the uninterrupted run (tests/callbacks/test_loss_feedback.py checks this with a
real mid-epoch Lightning resume). Without the callback the position is what the DataLoader pulled, which
may be a few batches past what was trained. Resuming with another world size or batch size keeps the
table and continues at the same global sample count with fresh draws (a warning says so).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Iterator, Sized

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from zoo.checks import (check_choice, check_int, check_nonnegative, check_number, check_positive, check_probability,
                        invalid)
from zoo.datamodules.samplers._common import check_distributed_args, check_state_kind, draws

MODES = ("online", "refresh")
INITIAL_LOSS_MODES = ("mean", "max")
_STATE_VERSION = 1
# steps of draws kept while mark_trained has not been called yet (more than any DataLoader prefetch)
_UNTRACKED_WINDOW = 64


def _to_numpy(x: Any, dtype: Any, what: str) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().to("cpu").numpy()
    arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"LPBBSampler.update: {what} must be 1-D, got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def all_gather_pairs(index: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All-gather 1-D (index, loss) pairs of possibly different lengths from every rank.

    Returns the concatenation in rank order, identical on every rank (int64 indices, float64 losses) on
    the device of ``loss``; with no initialised process group (or world size 1) the inputs, converted.
    """
    index = index.detach().reshape(-1).to(device=loss.device, dtype=torch.int64)
    loss = loss.detach().reshape(-1).to(torch.float64)
    if index.numel() != loss.numel():
        raise ValueError(f"all_gather_pairs: {index.numel()} indices but {loss.numel()} losses")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return index, loss
    world = dist.get_world_size()
    n = torch.tensor([index.numel()], device=loss.device, dtype=torch.int64)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    sizes_l = [int(s.item()) for s in sizes]
    m = max(sizes_l)
    # one collective for both: indices are exact in float64 up to 2**53
    packed = torch.zeros(2, m, device=loss.device, dtype=torch.float64)
    packed[0, : index.numel()] = index.to(torch.float64)
    packed[1, : loss.numel()] = loss
    out = [torch.empty_like(packed) for _ in range(world)]
    dist.all_gather(out, packed)
    idx = torch.cat([o[0, :k] for o, k in zip(out, sizes_l)]).to(torch.int64)
    val = torch.cat([o[1, :k] for o, k in zip(out, sizes_l)])
    return idx, val


class _WeightTree:
    """Complete binary tree over ``n`` leaves (node 1 is the root, node i has children 2i and 2i+1, leaf k
    is node ``size + k``). Per node it stores the sum of the *seen* weights below it, the number of
    *unseen* leaves below it and, if asked, the largest seen weight below it. The weight of a node for an
    unseen-sample weight v is ``sum + v * unseen``, so v may change without touching the tree."""

    def __init__(self, n: int, track_max: bool) -> None:
        self.n = n
        self.size = 1 << max(0, (n - 1).bit_length())
        self.depth = self.size.bit_length() - 1
        self.sum = np.zeros(2 * self.size)
        self.unseen = np.zeros(2 * self.size)
        self.max = np.zeros(2 * self.size) if track_max else None
        self.reset()

    def reset(self, weights: np.ndarray | None = None, seen: np.ndarray | None = None) -> None:
        """Rebuild every node (O(n)); used at construction and when a checkpoint is loaded."""
        s, n = self.size, self.n
        self.sum[:] = 0.0
        self.unseen[:] = 0.0
        if seen is None:
            self.unseen[s:s + n] = 1.0
        else:
            self.sum[s:s + n] = np.where(seen, weights, 0.0)
            self.unseen[s:s + n] = (~seen).astype(np.float64)
        if self.max is not None:
            self.max[:] = 0.0
            self.max[s:s + n] = self.sum[s:s + n]
        lo = s
        while lo > 1:
            hi, lo = lo, lo // 2
            left = np.arange(2 * lo, 2 * hi, 2)
            self.sum[lo:hi] = self.sum[left] + self.sum[left + 1]
            self.unseen[lo:hi] = self.unseen[left] + self.unseen[left + 1]
            if self.max is not None:
                self.max[lo:hi] = np.maximum(self.max[left], self.max[left + 1])

    def set(self, leaves: np.ndarray, weights: np.ndarray) -> None:
        """Mark ``leaves`` (unique) as seen with ``weights`` and recompute their root paths: O(m log n)."""
        pos = leaves + self.size
        self.sum[pos] = weights
        self.unseen[pos] = 0.0
        if self.max is not None:
            self.max[pos] = weights
        for _ in range(self.depth):
            pos = pos >> 1  # duplicates assign the same value twice: harmless
            left = 2 * pos
            self.sum[pos] = self.sum[left] + self.sum[left + 1]
            self.unseen[pos] = self.unseen[left] + self.unseen[left + 1]
            if self.max is not None:
                self.max[pos] = np.maximum(self.max[left], self.max[left + 1])

    def total(self, v: float) -> float:
        return float(self.sum[1] + v * self.unseen[1])

    def search(self, u: np.ndarray, v: float) -> np.ndarray:
        """Smallest leaf k whose cumulative weight reaches u (u in (0, total]); never a zero-weight leaf."""
        u = np.array(u, dtype=np.float64, copy=True)
        node = np.ones(u.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            wl = self.sum[left] + v * self.unseen[left]
            wr = self.sum[left + 1] + v * self.unseen[left + 1]
            # go right when u exceeds the left mass; a zero-mass right subtree is never entered (only
            # floating-point rounding of the partial sums could ask for it)
            right = (u > wl) & (wr > 0)
            u = np.where(right, u - wl, u)
            node = left + right
        return node - self.size


class LPBBSampler(Sampler[int]):
    """Index sampler drawing samples with probability proportional to their last loss (seed 002, Eq. 1).

    Args:
        dataset: the training dataset (only ``len(dataset)`` is used).
        batch_size: per-rank batch size of the DataLoader (steps are counted in batches).
        seed: base seed; step s of epoch e draws from a generator seeded with (seed, e, s).
        rank, world_size: this process's rank and the number of ranks.
        mode: ``"online"`` (BBO) or ``"refresh"`` (BB; the callback recomputes every loss periodically).
        refresh_every: fraction of an epoch between full refreshes in ``"refresh"`` mode (paper: 0.1).
        num_samples: samples per epoch per rank (``len(sampler)``); default ``len(dataset) // world_size``.
        initial_loss: weight of unseen samples: ``"mean"`` (default), ``"max"`` or a number >= 0.
        floor: minimum loss (loss units) a seen sample counts with, >= 0 (default 0: the paper).
        uniform_mix: lambda in [0, 1], mixture with the uniform distribution (default 0: the paper).
        temperature: T > 0, weights are loss ** (1/T) (default 1: the paper).
    """

    def __init__(
        self,
        dataset: Sized,
        batch_size: int = 64,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        mode: str = "online",
        refresh_every: float = 0.1,
        num_samples: int | None = None,
        initial_loss: float | str = "mean",
        floor: float = 0.0,
        uniform_mix: float = 0.0,
        temperature: float = 1.0,
    ) -> None:
        n = len(dataset)
        check_distributed_args(batch_size, seed, rank, world_size)
        if n < world_size:
            raise invalid("sampler", "lpbb", f"the training dataset has {n} samples",
                          f"a training dataset of at least world_size={world_size} sample(s)")
        check_choice("sampler.mode", mode, MODES)
        check_number("sampler.refresh_every", refresh_every, low=0.0, high=1.0, high_inclusive=True)
        num_samples = n // world_size if num_samples is None else check_int("sampler.num_samples", num_samples)
        if isinstance(initial_loss, str):
            check_choice("sampler.initial_loss", initial_loss, INITIAL_LOSS_MODES)
        else:
            check_nonnegative("sampler.initial_loss", initial_loss)
        check_nonnegative("sampler.floor", floor)
        check_probability("sampler.uniform_mix", uniform_mix)
        check_positive("sampler.temperature", temperature)

        self.n = n
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.mode = mode
        self.refresh_every = float(refresh_every)
        self.num_samples = int(num_samples)
        self.initial_loss = initial_loss if isinstance(initial_loss, str) else float(initial_loss)
        self.floor = float(floor)
        self.uniform_mix = float(uniform_mix)
        self.temperature = float(temperature)

        self.loss = np.zeros(n, dtype=np.float64)  # last loss per sample (raw, loss units)
        self.seen = np.zeros(n, dtype=bool)
        self._n_seen = 0
        self._tree = _WeightTree(n, track_max=self.initial_loss == "max")
        self.epoch = 0
        self._yielded = 0  # steps of this epoch handed to the DataLoader
        self._trained = 0  # steps of this epoch reported trained by mark_trained
        self._tracking = False  # True once mark_trained has been called (the callback is wired)
        self._pending: dict[int, np.ndarray] = {}  # step -> global draws, for steps not yet trained
        self._warned_zero = False

    # ---- probabilities ------------------------------------------------------------------------------
    def weight(self, loss: np.ndarray | float) -> np.ndarray:
        """Sampling weight of a loss value: max(loss, floor) ** (1 / temperature)."""
        w = np.maximum(np.asarray(loss, dtype=np.float64), self.floor)
        return w if self.temperature == 1.0 else w ** (1.0 / self.temperature)

    def unseen_weight(self) -> float:
        """Weight of samples without a loss yet (see ``initial_loss``)."""
        if isinstance(self.initial_loss, float):
            return float(self.weight(self.initial_loss))
        if self._n_seen == 0:
            return 1.0
        if self.initial_loss == "mean":
            return float(self._tree.sum[1]) / self._n_seen
        return float(self._tree.max[1])

    def probabilities(self) -> np.ndarray:
        """The full distribution p [n] the next draw follows, computed directly from the table (O(n);
        for inspection, logging and tests -- drawing never calls it)."""
        w = np.where(self.seen, self.weight(self.loss), self.unseen_weight())
        total = w.sum()
        p = w / total if total > 0 else np.full(self.n, 1.0 / self.n)
        return (1.0 - self.uniform_mix) * p + self.uniform_mix / self.n

    def search(self, u: Any) -> np.ndarray:
        """Eq. 1: for each u, the smallest k with sum_{i<=k} w_i >= u (weights w as the tree holds them,
        unseen samples at :meth:`unseen_weight`); u in (0, sum w]. O(len(u) log n)."""
        return self._tree.search(np.asarray(u, dtype=np.float64).reshape(-1), self.unseen_weight())

    def stats(self) -> dict[str, float]:
        """Summary of the current distribution (O(n)): ``max_median_ratio`` of the weights, normalised
        effective sample size ``ess`` = (sum p)^2 / (n sum p^2) in (0, 1] (1 = uniform), ``seen_fraction``
        and the ``total_weight``."""
        w = np.where(self.seen, self.weight(self.loss), self.unseen_weight())
        med = float(np.median(w))
        p = self.probabilities()
        return {
            "max_median_ratio": float(w.max() / med) if med > 0 else math.inf,
            "ess": float(1.0 / (self.n * np.square(p).sum())),
            "seen_fraction": self._n_seen / self.n,
            "total_weight": float(w.sum()),
        }

    # ---- feedback -----------------------------------------------------------------------------------
    def update(self, indices: Any, losses: Any) -> None:
        """Store the last loss of dataset samples ``indices``; a sample listed several times (drawn twice,
        or gathered from several ranks) gets the mean of its losses. Every rank must call this with the
        same (gathered) tensors. ValueError for indices outside [0, n) and for NaN/inf/negative losses."""
        idx = _to_numpy(indices, np.int64, "indices")
        val = _to_numpy(losses, np.float64, "losses")
        if idx.shape != val.shape:
            raise ValueError(f"LPBBSampler.update: indices {idx.shape} and losses {val.shape} differ in length")
        if idx.size == 0:
            return
        out = (idx < 0) | (idx >= self.n)
        if out.any():
            raise ValueError(f"LPBBSampler.update: dataset indices {idx[out][:20].tolist()} are outside "
                             f"[0, {self.n}); the sampler was built for a dataset of {self.n} samples")
        nonfinite = ~np.isfinite(val)
        if nonfinite.any():
            raise ValueError(f"LPBBSampler.update: non-finite loss {val[nonfinite][:20].tolist()} for dataset "
                             f"indices {idx[nonfinite][:20].tolist()}; the loss table only takes finite "
                             f"per-sample losses (check those samples and the learning rate)")
        neg = val < 0
        if neg.any():
            raise ValueError(f"LPBBSampler.update: negative loss {val[neg][:20].tolist()} for dataset indices "
                             f"{idx[neg][:20].tolist()}; LPBB needs losses >= 0 (they are probabilities)")
        uniq, inv = np.unique(idx, return_inverse=True)
        vals = np.bincount(inv, weights=val) / np.bincount(inv)
        self._n_seen += int((~self.seen[uniq]).sum())
        self.loss[uniq] = vals
        self.seen[uniq] = True
        self._tree.set(uniq, self.weight(vals))

    # ---- drawing ------------------------------------------------------------------------------------
    def _steps(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def _step_len(self, step: int) -> int:
        return min(self.batch_size, self.num_samples - step * self.batch_size)

    def _generator(self, step: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, self.epoch, step])))

    def draw(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """m dataset indices drawn i.i.d. from :meth:`probabilities` with ``rng``. O(m log n)."""
        v = self.unseen_weight()
        total = self._tree.total(v)
        u = 1.0 - rng.random(m)  # in (0, 1]
        if total > 0:
            out = self._tree.search(u * total, v)
        else:
            if not self._warned_zero:
                warnings.warn("LPBBSampler: every sample has weight 0 (all losses 0 and floor=0); drawing "
                              "uniformly until a positive loss arrives (set sampler.floor > 0 to avoid this)",
                              RuntimeWarning, stacklevel=2)
                self._warned_zero = True
            out = np.minimum((u * self.n).astype(np.int64), self.n - 1)
        if self.uniform_mix > 0:
            coin = rng.random(m) < self.uniform_mix
            out = np.where(coin, rng.integers(0, self.n, m), out)
        return out

    def global_draws(self, step: int) -> np.ndarray:
        """The ``world_size * b`` indices all ranks draw for ``step`` of the current epoch (b = the per-rank
        length of that step); rank r uses ``global_draws(step)[r::world_size]``."""
        if step in self._pending:
            return self._pending[step]
        g = self.draw(self.world_size * self._step_len(step), self._generator(step))
        self._pending[step] = g
        return g

    def __iter__(self) -> Iterator[int]:
        if self._yielded >= self._steps():  # epoch handed out and set_epoch not called: next epoch
            self._new_epoch(self.epoch + 1)
        start = self._position_steps()
        self._yielded = start
        for step in range(start, self._steps()):
            share = self.global_draws(step)[self.rank::self.world_size]
            self._yielded = step + 1
            if not self._tracking:  # nobody reports trained steps (yet): keep only a window for a resume
                self._pending.pop(step - _UNTRACKED_WINDOW, None)
            yield from draws(share.tolist(), self.seed, self.epoch, self.rank, step << 32)  # draw j of step: (step << 32) + j

    def __len__(self) -> int:
        return self.num_samples

    # ---- epochs, progress and checkpoints -----------------------------------------------------------
    def _new_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._yielded = 0
        self._trained = 0
        self._pending.clear()

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch; the same epoch again (a resumed run) keeps the
        position inside the epoch."""
        if epoch != self.epoch:
            self._new_epoch(int(epoch))

    def mark_trained(self, batches: int) -> None:
        """``batches`` batches of the current epoch have been trained on this rank (the callback calls this
        after every batch); checkpoints then resume after exactly those batches."""
        self._tracking = True
        self._trained = int(batches)
        for s in [s for s in self._pending if s < self._trained]:
            del self._pending[s]

    def _position_steps(self) -> int:
        return self._trained if self._tracking else self._yielded

    def state_dict(self) -> dict[str, Any]:
        pos = self._position_steps()
        pending = {int(s): torch.from_numpy(g.copy()) for s, g in self._pending.items() if s >= pos}
        return {
            "sampler": type(self).__name__,
            "version": _STATE_VERSION,
            "n": self.n,
            "loss": torch.from_numpy(self.loss.copy()),
            "seen": torch.from_numpy(self.seen.copy()),
            "seed": self.seed,
            "epoch": self.epoch,
            "step": pos,
            "position": min(pos * self.batch_size, self.num_samples),
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "pending": pending,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_kind(state, "LPBBSampler")
        missing = [k for k in ("n", "loss", "seen", "seed", "epoch", "step", "batch_size", "world_size")
                   if k not in state]
        if missing:
            raise ValueError(f"LPBBSampler.load_state_dict: checkpoint state lacks keys {missing}")
        if int(state["n"]) != self.n:
            raise ValueError(f"LPBBSampler.load_state_dict: the checkpoint's loss table has {state['n']} "
                             f"samples but the training set has {self.n}; resume with the same training data")
        loss = np.asarray(torch.as_tensor(state["loss"]).double().numpy(), dtype=np.float64).copy()
        seen = np.asarray(torch.as_tensor(state["seen"]).bool().numpy(), dtype=bool).copy()
        if int(state["seed"]) != self.seed:
            warnings.warn(f"LPBBSampler: checkpoint seed {state['seed']} replaces the configured seed {self.seed}",
                          stacklevel=2)
        self.seed = int(state["seed"])
        self.loss, self.seen, self._n_seen = loss, seen, int(seen.sum())
        self._tree.reset(self.weight(loss), seen)
        self.epoch = int(state["epoch"])
        self._pending = {}
        step = int(state["step"])
        if int(state["batch_size"]) == self.batch_size and int(state["world_size"]) == self.world_size:
            self._pending = {int(s): torch.as_tensor(g).numpy().astype(np.int64)
                             for s, g in dict(state.get("pending", {})).items()}
        else:
            consumed = int(state["step"]) * int(state["batch_size"]) * int(state["world_size"])
            step = consumed // (self.batch_size * self.world_size)
            warnings.warn(f"LPBBSampler: resuming with batch_size/world_size {self.batch_size}/{self.world_size} "
                          f"instead of {state['batch_size']}/{state['world_size']}: the epoch continues at step "
                          f"{step} with fresh draws (not bit-identical to the original run)", stacklevel=2)
        self._yielded = step
        self._trained = step
