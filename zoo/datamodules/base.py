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

from typing import Any, Callable, Protocol, runtime_checkable

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from zoo.datamodules.samples import DataInfo


def dist_rank_world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class FaceDataModule(L.LightningDataModule):
    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 2,
        sampler: Callable[..., Any] | None = None,
        seed: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        eval_batch_size: int | None = None,
        drop_last: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.sampler_factory = sampler
        self.seed = seed
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.drop_last = drop_last
        self.datasets: dict[str, Dataset | None] = {}
        self.train_sampler: Any = None

    # ---- to implement -------------------------------------------------------------------------
    def build_datasets(self) -> dict[str, Dataset | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def data_info(self) -> DataInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = self.build_datasets()

    @property
    def info(self) -> DataInfo:
        self.setup()
        return self.data_info()

    def _loader(self, ds: Dataset, batch_size: int, **kw: Any) -> DataLoader:
        return DataLoader(ds, batch_size=batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.persistent_workers, **kw)

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
        if getattr(s, "is_batch_sampler", False):
            return DataLoader(ds, batch_sampler=s, num_workers=self.num_workers, pin_memory=self.pin_memory,
                              persistent_workers=self.persistent_workers)
        return self._loader(ds, self.batch_size, sampler=s, drop_last=self.drop_last)

    def _eval_loader(self, split: str) -> DataLoader | list:
        self.setup(split)
        ds = self.datasets.get(split)
        if ds is None:
            return []
        rank, world = dist_rank_world()
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
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
        if "train_sampler" in state_dict:
            self.setup("fit")
            if self.train_sampler is None:
                self.train_sampler = self.make_train_sampler(self.datasets["train"])
            self.train_sampler.load_state_dict(state_dict["train_sampler"])

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

    def refresh_loader(self) -> DataLoader:
        """This rank's sequential shard ``rank::world`` of the training set (with its training transform) at
        ``eval_batch_size``; built once and kept (its workers persist between refreshes when num_workers > 0)."""
        ds = self.datasets.get("train")
        if ds is None:
            raise ValueError(f"{type(self).__name__}: no training split to refresh the sampler's losses from")
        rank, world = dist_rank_world()
        key = (id(ds), rank, world)
        if getattr(self, "_refresh", (None, None))[0] != key:
            self._refresh = (key, self._loader(ds, self.eval_batch_size, sampler=range(rank, len(ds), world)))
        return self._refresh[1]


@runtime_checkable
class SamplerFeedback(Protocol):
    """What the training step may tell the data (implemented by :class:`FaceDataModule`; driven by
    :class:`zoo.callbacks.loss_feedback.LossFeedback`, the only caller):

    * ``takes_losses``: the training sampler wants per-sample losses (LPBB);
    * ``record_losses(indices [N], losses [N])``: the losses of these dataset indices (all ranks' pairs, the
      same on every rank);
    * ``mark_trained(batches)``: batches of the current epoch trained so far (exact mid-epoch resume);
    * ``refresh_every``: fraction of an epoch between full loss refreshes (LPBB ``mode=refresh``), else None;
    * ``refresh_loader()``: the loader of this rank's training shard the refresh pass runs over;
    * ``sampler_stats()``: scalars to log (``max_median_ratio``, ``ess``, ``seen_fraction``; may be empty).
    """

    takes_losses: bool
    refresh_every: float | None

    def record_losses(self, indices: torch.Tensor, losses: torch.Tensor) -> None: ...

    def mark_trained(self, batches: int) -> None: ...

    def refresh_loader(self) -> DataLoader: ...

    def sampler_stats(self) -> dict[str, float]: ...
