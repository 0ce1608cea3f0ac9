"""Feeds per-sample training losses to the training sampler (LPBB of seed 002) and reports progress.

After every training batch :class:`LossFeedback`

1. tells the sampler how many batches of the epoch are trained (``sampler.mark_trained``, any zoo sampler)
   so that a checkpoint resumes after exactly those batches;
2. if the sampler has ``update`` (LPBB): reads ``outputs["per_sample_loss"]`` [B] and ``outputs["index"]``
   [B] from ``training_step``'s returned dict, all-gathers the (index, loss) pairs of all ranks
   (:func:`zoo.datamodules.samplers.lpbb.all_gather_pairs`) and calls ``sampler.update(index, loss)`` with
   the *same* gathered tensors on every rank, so the loss tables stay identical;
3. if the sampler is in ``mode="refresh"`` (the paper's BB): every ``sampler.refresh_every`` fraction of the
   epoch's batches (paper: 10%) recomputes the loss of every training sample -- model in eval mode, no
   gradients, each rank a sequential ``r::world`` shard of ``trainer.datamodule.datasets["train"]`` at the
   datamodule's eval batch size, through ``pl_module.per_sample_loss(batch) -> (losses [B], index [B])``
   -- gathers and updates the table, then restores every submodule's train/eval mode. The refresh reads
   the training dataset as the datamodule gives it, i.e. *with* its training augmentation: the losses are
   those of augmented views, like the online losses (the paper trains with online augmentation).
4. logs ``lpbb/max_median_ratio``, ``lpbb/ess`` (normalised effective sample size, 1 = uniform),
   ``lpbb/seen_fraction`` every ``log_every_n_steps`` steps (O(n) each time) and ``lpbb/refresh_seconds``.

Under DDP the callback uses ``torch.distributed`` directly (Lightning's DDP strategies initialise it), so
the same code path runs in a plain gloo/NCCL process group.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from zoo.datamodules.samplers.lpbb import all_gather_pairs

__all__ = ["LossFeedback", "all_gather_pairs", "train_sampler_of"]


def train_sampler_of(trainer: L.Trainer) -> Any:
    """The training sampler: ``trainer.datamodule.train_sampler`` or the train DataLoader's sampler."""
    s = getattr(getattr(trainer, "datamodule", None), "train_sampler", None)
    if s is not None:
        return s
    dl = getattr(trainer, "train_dataloader", None)
    for name in ("sampler", "batch_sampler"):
        cand = getattr(dl, name, None)
        if hasattr(cand, "mark_trained") or hasattr(cand, "update"):
            return cand
    return None


class LossFeedback(L.Callback):
    """Loss feedback for the LPBB sampler (Fuhl & Kasneci, ICMV 2019, Sec. 3 and 5: BBO / BB).

    Args:
        log_every_n_steps: how often to log ``lpbb/*`` statistics; default the trainer's
            ``log_every_n_steps``; 0 disables them.
        refresh_batch_size: batch size of the refresh pass (default: ``datamodule.eval_batch_size``).
        refresh_num_workers: DataLoader workers of the refresh pass (default: ``datamodule.num_workers``).
    """

    def __init__(self, log_every_n_steps: int | None = None, refresh_batch_size: int | None = None,
                 refresh_num_workers: int | None = None) -> None:
        for key, value, lo in (("log_every_n_steps", log_every_n_steps, 0),
                               ("refresh_batch_size", refresh_batch_size, 1),
                               ("refresh_num_workers", refresh_num_workers, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < lo):
                raise ValueError(f"callbacks.loss_feedback.{key}: got {value!r}, expected null or an integer >= {lo}")
        self.log_every_n_steps = log_every_n_steps
        self.refresh_batch_size = refresh_batch_size
        self.refresh_num_workers = refresh_num_workers
        self.refreshes = 0
        self._warned_none = False

    # ---- online feedback -----------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        sampler = train_sampler_of(trainer)
        if sampler is None:
            return
        if hasattr(sampler, "mark_trained"):
            sampler.mark_trained(batch_idx + 1)
        if not hasattr(sampler, "update"):
            return
        idx, loss = self._pairs(outputs, pl_module)
        idx, loss = all_gather_pairs(idx, loss)  # every rank takes part, even with an empty batch
        try:
            sampler.update(idx, loss)
        except ValueError as e:
            raise ValueError(f"LossFeedback at global step {trainer.global_step} (batch {batch_idx} of epoch "
                             f"{trainer.current_epoch}): {e}") from e
        if getattr(sampler, "mode", "online") == "refresh":
            period = self.refresh_period(trainer, sampler)
            if (batch_idx + 1) % period == 0:
                self.refresh(trainer, pl_module, sampler)
        every = trainer.log_every_n_steps if self.log_every_n_steps is None else self.log_every_n_steps
        if every and hasattr(sampler, "stats") and (batch_idx + 1) % every == 0:
            stats = sampler.stats()
            for k in ("max_median_ratio", "ess", "seen_fraction"):
                if math.isfinite(stats[k]):
                    pl_module.log(f"lpbb/{k}", stats[k], on_step=True, on_epoch=False, batch_size=1)

    def _pairs(self, outputs: Any, pl_module: L.LightningModule) -> tuple[torch.Tensor, torch.Tensor]:
        if outputs is None:  # training_step skipped the batch: nothing to feed, but join the gather
            if not self._warned_none:
                warnings.warn("LossFeedback: training_step returned None for a batch; its samples keep their "
                              "previous loss in the LPBB table", RuntimeWarning, stacklevel=2)
                self._warned_none = True
            empty = torch.zeros(0, device=pl_module.device)
            return empty.long(), empty
        if not isinstance(outputs, dict) or "per_sample_loss" not in outputs or "index" not in outputs:
            keys = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
            raise ValueError(f"LossFeedback: training_step must return a dict with 'loss', 'per_sample_loss' [B] "
                             f"(detached) and 'index' [B] for the LPBB sampler; got {keys}")
        loss, idx = outputs["per_sample_loss"], outputs["index"]
        if not (torch.is_tensor(loss) and torch.is_tensor(idx)) or loss.reshape(-1).shape != idx.reshape(-1).shape:
            raise ValueError(f"LossFeedback: 'per_sample_loss' and 'index' must be tensors of the same length [B], "
                             f"got {tuple(getattr(loss, 'shape', ()))} and {tuple(getattr(idx, 'shape', ()))}")
        return idx.detach(), loss.detach()

    # ---- refresh (BB) --------------------------------------------------------------------------------
    @staticmethod
    def refresh_period(trainer: L.Trainer, sampler: Any) -> int:
        """Batches between full refreshes: max(1, round(refresh_every * batches per epoch))."""
        nb = trainer.num_training_batches
        if not math.isfinite(nb):
            nb = max(1, len(sampler) // max(1, getattr(sampler, "batch_size", 1)))
        return max(1, int(round(sampler.refresh_every * nb)))

    def refresh(self, trainer: L.Trainer, pl_module: L.LightningModule, sampler: Any) -> None:
        """Recompute every training sample's loss (each rank its shard), gather, update the table."""
        from lightning.pytorch.utilities import move_data_to_device

        t0 = time.perf_counter()
        dm = trainer.datamodule
        ds = (getattr(dm, "datasets", None) or {}).get("train") if dm is not None else None
        if ds is None:
            raise ValueError("LossFeedback: sampler mode 'refresh' needs trainer.datamodule.datasets['train'] "
                             "(a zoo FaceDataModule); use mode 'online' otherwise")
        rank, world = trainer.global_rank, trainer.world_size
        bs = self.refresh_batch_size or getattr(dm, "eval_batch_size", None) or getattr(dm, "batch_size", 64)
        nw = self.refresh_num_workers if self.refresh_num_workers is not None else getattr(dm, "num_workers", 0)
        loader = DataLoader(ds, batch_size=bs, sampler=range(rank, len(ds), world), num_workers=nw,
                            pin_memory=getattr(dm, "pin_memory", False))
        modes = [(m, m.training) for m in pl_module.modules()]
        pl_module.eval()
        idx_l, loss_l = [], []
        try:
            with torch.no_grad(), trainer.precision_plugin.forward_context():
                for batch in loader:
                    batch = move_data_to_device(batch, pl_module.device)
                    losses, index = pl_module.per_sample_loss(batch)
                    idx_l.append(index.detach().reshape(-1))
                    loss_l.append(losses.detach().float().reshape(-1))
        finally:
            for m, was in modes:
                m.training = was
        dev = pl_module.device
        idx = torch.cat(idx_l).to(dev) if idx_l else torch.zeros(0, dtype=torch.long, device=dev)
        loss = torch.cat(loss_l).to(dev) if loss_l else torch.zeros(0, device=dev)
        idx, loss = all_gather_pairs(idx, loss)
        sampler.update(idx, loss)
        self.refreshes += 1
        pl_module.log("lpbb/refresh_seconds", time.perf_counter() - t0, on_step=True, on_epoch=False, batch_size=1)
