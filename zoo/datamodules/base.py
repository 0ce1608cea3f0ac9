"""Base LightningDataModule shared by every zoo datamodule (real, synthetic, GAN-augmented).

Subclasses implement :meth:`build_datasets` returning ``{"train": ds, "val": ds, "test": ds}`` (any may be
None) and :meth:`data_info`. The base class owns the DataLoaders and the training sampler:

* ``sampler`` is a callable (a Hydra ``_partial_`` of a zoo sampler class, or None for uniform shuffling)
  called as ``sampler(dataset=train_ds, batch_size=..., seed=..., rank=..., world_size=...)``. It returns
  either an index :class:`~torch.utils.data.Sampler` or a batch sampler (``is_batch_sampler = True``
  class attribute, e.g. the P×K sampler).
* zoo samplers are distributed-aware themselves, so the Trainer runs with ``use_distributed_sampler=False``
  (configs/trainer/default.yaml) and this class builds the per-rank samplers for val/test as well.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any, Callable, Protocol, runtime_checkable

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from zoo.checks import check_bool, check_int, invalid
from zoo.datamodules.samplers._common import describe, state_kind
from zoo.datamodules.samples import DataInfo


def dist_rank_world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class LoaderSettings:
    """DataLoader settings of a datamodule (the ``data.*`` keys every datamodule takes), validated once.

    batch_size: training batch per rank. eval_batch_size: val/test batch (default: batch_size).
    num_workers: DataLoader worker processes (0 = load in the main process). pin_memory, persistent_workers
    (only with num_workers > 0): as in torch.utils.data.DataLoader. drop_last: drop the last incomplete training
    batch (so a split smaller than ``batch_size`` gives no batch: :meth:`FaceDataModule.setup` refuses that).
    seed: the training sampler's seed (shuffling order, LPBB draws, P×K batches).
    """

    batch_size: int = 64
    num_workers: int = 2
    seed: int = 0
    pin_memory: bool = False
    persistent_workers: bool = True
    eval_batch_size: int | None = None
    drop_last: bool = True

    def __post_init__(self) -> None:
        check_int("data.batch_size", self.batch_size)
        check_int("data.num_workers", self.num_workers, low=0)
        check_int("data.seed", self.seed, low=0)
        for key in ("pin_memory", "persistent_workers", "drop_last"):
            check_bool(f"data.{key}", getattr(self, key))
        if self.eval_batch_size is not None:
            check_int("data.eval_batch_size", self.eval_batch_size)

    def kwargs(self, batch_size: int | None = None) -> dict[str, Any]:
        """Keyword arguments of a DataLoader with these settings (``batch_size`` omitted when None)."""
        kw: dict[str, Any] = dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                                  persistent_workers=self.persistent_workers and self.num_workers > 0)
        if batch_size is not None:
            kw["batch_size"] = batch_size
        return kw


class FaceDataModule(L.LightningDataModule):
    """Base of every zoo datamodule: ``sampler`` (module docstring) plus the DataLoader settings
    (:class:`LoaderSettings` keys: batch_size, num_workers, seed, pin_memory, persistent_workers,
    eval_batch_size, drop_last), which subclasses pass through as ``**loader``."""

    def __init__(self, sampler: Callable[..., Any] | None = None, **loader: Any) -> None:
        super().__init__()
        unknown = sorted(set(loader) - {f.name for f in fields(LoaderSettings)})
        if unknown:
            raise invalid(f"data.{unknown[0]}", loader[unknown[0]], f"unknown key for {type(self).__name__}",
                          f"one of its documented keys, or a DataLoader setting "
                          f"({', '.join(f.name for f in fields(LoaderSettings))})")
        self.loader = LoaderSettings(**loader)
        self.sampler_factory = sampler
        self.datasets: dict[str, Dataset | None] = {}
        self.train_sampler: Any = None

    # DataLoader settings, read by callbacks and scripts under their data.* names
    batch_size = property(lambda self: self.loader.batch_size)
    eval_batch_size = property(lambda self: self.loader.eval_batch_size or self.loader.batch_size)
    num_workers = property(lambda self: self.loader.num_workers)
    pin_memory = property(lambda self: self.loader.pin_memory)
    persistent_workers = property(lambda self: self.loader.persistent_workers and self.loader.num_workers > 0)
    drop_last = property(lambda self: self.loader.drop_last)
    seed = property(lambda self: self.loader.seed)

    # ---- to implement -------------------------------------------------------------------------
    def build_datasets(self) -> dict[str, Dataset | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def data_info(self) -> DataInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = self.build_datasets()
        if stage == "fit":
            self.check_train_batches()

    def check_train_batches(self, sampler: Any = None) -> None:
        """ValueError naming ``data.batch_size`` when drop_last leaves 0 training batches per epoch (a training
        split smaller than the batch): known from the split size at setup, from ``len(sampler)`` once built."""
        ds = self.datasets.get("train")
        if ds is None or not self.drop_last:
            return
        if sampler is not None:
            if getattr(sampler, "is_batch_sampler", False):
                return
            per_rank, what = len(sampler), f"{type(sampler).__name__} yields {len(sampler)} samples per epoch per rank"
        else:
            factory = getattr(self.sampler_factory, "func", self.sampler_factory)  # Hydra's _partial_: a partial
            if getattr(factory, "is_batch_sampler", False) or \
                    getattr(self.sampler_factory, "keywords", {}).get("num_samples") is not None:
                return  # the sampler makes its own batches or sets the epoch length: checked once it is built
            rank, world = dist_rank_world()
            per_rank = len(ds) // world
            what = f"the training split has {len(ds)} samples" + (f" ({per_rank} per rank of {world})" if world > 1 else "")
        if per_rank < self.batch_size:
            raise invalid("data.batch_size", self.batch_size, f"{what}, fewer than one batch, so with drop_last "
                          f"no training batch would run (0 training steps)",
                          f"data.batch_size <= {per_rank} (or more training data: data.train_fraction, "
                          f"data.num_identities...; or +data.drop_last=false)")

    @property
    def info(self) -> DataInfo:
        self.setup()
        return self.data_info()

    def _loader(self, ds: Dataset, batch_size: int | None, **kw: Any) -> DataLoader:
        return DataLoader(ds, **self.loader.kwargs(batch_size), **kw)

    def make_train_sampler(self, ds: Dataset) -> Any:
        rank, world = dist_rank_world()
        if self.sampler_factory is None:
            if world > 1:
                return DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
            return RandomSampler(ds, generator=torch.Generator().manual_seed(self.seed))
        return self.sampler_factory(dataset=ds, batch_size=self.batch_size, seed=self.seed, rank=rank,
                                    world_size=world)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        ds = self.datasets.get("train")
        if ds is None:
            raise ValueError(f"{type(self).__name__}: no training split")
        # Keep one sampler across epochs (its state is checkpointed and fed losses by a callback).
        if self.train_sampler is None:
            self.train_sampler = self.make_train_sampler(ds)
        s = self.train_sampler
        self.check_train_batches(s)
        if getattr(s, "is_batch_sampler", False):
            return self._loader(ds, None, batch_sampler=s)
        return self._loader(ds, self.batch_size, sampler=s, drop_last=self.drop_last)

    def eval_dataset(self, split: str) -> Dataset | None:
        """The dataset the val/test loaders read (the split itself; datamodules that render on the fly return a
        cached copy, :mod:`zoo.datamodules.eval_cache`)."""
        self.setup(split)
        return self.datasets.get(split)

    def _eval_loader(self, split: str) -> DataLoader | list:
        ds = self.eval_dataset(split)
        if ds is None:
            return []
        rank, world = dist_rank_world()
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
        if getattr(ds, "in_memory", False):  # already in RAM: no worker processes to start or feed
            return DataLoader(ds, batch_size=self.eval_batch_size, sampler=sampler, shuffle=False, num_workers=0,
                              pin_memory=self.pin_memory)
        return self._loader(ds, self.eval_batch_size, sampler=sampler, shuffle=False)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    # sampler state travels in the checkpoint (LPBB loss table, PK position, RNG)
    def state_dict(self) -> dict[str, Any]:
        s = self.train_sampler
        return {"train_sampler": s.state_dict()} if s is not None and hasattr(s, "state_dict") else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "train_sampler" not in state_dict and self.sampler_factory is not None:
            factory = getattr(self.sampler_factory, "func", self.sampler_factory)
            warnings.warn(f"sampler: the checkpoint holds no sampler state (it was trained with plain shuffling, "
                          f"sampler=null); {getattr(factory, '__name__', factory)} starts fresh", stacklevel=2)
        if "train_sampler" in state_dict:
            self.setup("fit")
            if self.train_sampler is None:
                self.train_sampler = self.make_train_sampler(self.datasets["train"])
            load = getattr(self.train_sampler, "load_state_dict", None)
            if load is None:
                saved = describe(state_kind(state_dict["train_sampler"]))
                raise invalid("sampler", None, f"the checkpoint was trained with {saved}, but this run shuffles with "
                              f"{type(self.train_sampler).__name__}, which cannot take its state",
                              "the checkpoint's sampler to resume it, or a new run without ckpt_path")
            load(state_dict["train_sampler"])

    # ---- sampler feedback (the one hook between the training step and the data; see SamplerFeedback) ---------
    @property
    def takes_losses(self) -> bool:
        return hasattr(self.train_sampler, "update")

    @property
    def refresh_every(self) -> float | None:
        s = self.train_sampler
        return float(s.refresh_every) if getattr(s, "mode", None) == "refresh" else None

    def record_losses(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        if self.takes_losses:
            self.train_sampler.update(indices, losses)

    def mark_trained(self, batches: int) -> None:
        if hasattr(self.train_sampler, "mark_trained"):
            self.train_sampler.mark_trained(batches)

    def sampler_stats(self) -> dict[str, float]:
        return self.train_sampler.stats() if hasattr(self.train_sampler, "stats") else {}

    def refresh_loader(self) -> "RefreshPass":
        """The batches of one BB refresh pass over this rank's sequential shard ``rank::world`` of the training set
        at ``eval_batch_size`` (:class:`RefreshPass`; built once and kept across refreshes).

        The view is the sampler's ``refresh_view``: ``plain`` (default) reads the training images without
        augmentation (``dataset.without_augmentation()`` when the dataset has one), ``augmented`` as training
        reads them. A view that is ``deterministic`` (e.g. a landmark dataset without augmentation) and whose shard
        fits in ``refresh_cache_mb`` is loaded once (the first refresh, with this datamodule's workers) and then
        replayed from memory: later refreshes are forward passes only. Otherwise the loader keeps its workers
        between refreshes (persistent_workers; no fork per refresh when num_workers > 0)."""
        ds = self.datasets.get("train")
        if ds is None:
            raise ValueError(f"{type(self).__name__}: no training split to refresh the sampler's losses from")
        rank, world = dist_rank_world()
        s = self.train_sampler
        view_name = getattr(s, "refresh_view", "plain")
        key = (id(ds), rank, world, view_name)
        if getattr(self, "_refresh", (None, None))[0] != key:
            view = ds.without_augmentation() if view_name == "plain" and hasattr(ds, "without_augmentation") else ds
            shard = range(rank, len(ds), world)
            limit = float(getattr(s, "refresh_cache_mb", 0.0)) * 2 ** 20
            cache = bool(getattr(view, "deterministic", False)) and len(shard) > 0 and \
                _sample_bytes(view[shard[0]]) * len(shard) <= limit
            kw = self.loader.kwargs(self.eval_batch_size)
            kw["persistent_workers"] = kw["persistent_workers"] and not cache  # a cached pass needs no workers later
            self._refresh = (key, RefreshPass(DataLoader(view, sampler=shard, **kw), cache=cache))
        return self._refresh[1]


def _sample_bytes(sample: Any) -> int:
    """Bytes of the tensors in one sample (dict / list / tensor), to size the refresh cache."""
    if torch.is_tensor(sample):
        return sample.element_size() * sample.nelement()
    if isinstance(sample, dict):
        return sum(_sample_bytes(v) for v in sample.values())
    if isinstance(sample, (list, tuple)):
        return sum(_sample_bytes(v) for v in sample)
    return 0


class RefreshPass:
    """Iterable over the batches of the BB refresh pass. With ``cache=True`` the first complete pass through
    ``loader`` is kept (CPU batches) and every later pass replays it without touching the loader (its workers
    were not persistent and are gone); with ``cache=False`` every pass iterates ``loader``."""

    def __init__(self, loader: DataLoader, cache: bool) -> None:
        self.loader, self.cache = loader, cache
        self.batches: list[Any] | None = None

    @property
    def cached(self) -> bool:
        return self.batches is not None

    def __len__(self) -> int:
        return len(self.batches) if self.batches is not None else len(self.loader)

    def __iter__(self):
        if self.batches is not None:
            yield from self.batches
            return
        kept: list[Any] | None = [] if self.cache else None
        for batch in self.loader:
            if kept is not None:
                kept.append(batch)
            yield batch
        if kept is not None:  # only a complete pass is kept
            self.batches = kept


@runtime_checkable
class SamplerFeedback(Protocol):
    """What the training step may tell the data (implemented by :class:`FaceDataModule`; driven by
    :class:`zoo.callbacks.loss_feedback.LossFeedback`, the only caller):

    * ``takes_losses``: the training sampler wants per-sample losses (LPBB);
    * ``record_losses(indices [N], losses [N])``: the losses of these dataset indices (all ranks' pairs, the
      same on every rank);
    * ``mark_trained(batches)``: batches of the current epoch trained so far (exact mid-epoch resume);
    * ``refresh_every``: fraction of an epoch between full loss refreshes (LPBB ``mode=refresh``), else None;
    * ``refresh_loader()``: the batches of this rank's training shard the refresh pass runs over (an iterable,
      kept across refreshes; :class:`RefreshPass` for zoo datamodules);
    * ``sampler_stats()``: scalars to log (``max_median_ratio``, ``ess``, ``seen_fraction``; may be empty).
    """

    takes_losses: bool
    refresh_every: float | None

    def record_losses(self, indices: torch.Tensor, losses: torch.Tensor) -> None: ...

    def mark_trained(self, batches: int) -> None: ...

    def refresh_loader(self) -> Any: ...

    def sampler_stats(self) -> dict[str, float]: ...
