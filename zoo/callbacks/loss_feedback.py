"""Feeds per-sample training losses to the training sampler (LPBB of seed 002) and reports progress.

The callback talks to the data only through the :class:`zoo.datamodules.base.SamplerFeedback` hook that
``trainer.datamodule`` implements (every zoo datamodule does); after every training batch it

1. tells the datamodule how many batches of the epoch are trained (``mark_trained``) so that a checkpoint
   resumes after exactly those batches;
2. if the datamodule ``takes_losses`` (LPBB): reads ``outputs["per_sample_loss"]`` [B] and ``outputs["index"]``
   [B] from ``training_step``'s returned dict, all-gathers the (index, loss) pairs of all ranks
   (:func:`zoo.datamodules.samplers.lpbb.all_gather_pairs`) and calls ``record_losses(index, loss)`` with
   the *same* gathered tensors on every rank, so the loss tables stay identical;
3. if ``refresh_every`` is set (the paper's BB): every ``refresh_every`` fraction of the epoch's batches
   (paper: 10%) recomputes the loss of every training sample -- model in eval mode, ``torch.inference_mode``,
   each rank over ``datamodule.refresh_loader()`` (its sequential ``r::world`` shard of the training set at the
   eval batch size, built once: a deterministic view is replayed from memory after the first pass, otherwise
   the loader keeps its workers; no new workers per refresh), through
   ``pl_module.per_sample_loss(batch) -> (losses [B], index [B])`` -- gathers and records them, then restores
   every submodule's train/eval mode. By default (``sampler.refresh_view=plain``) the pass evaluates the
   training images *without* augmentation: Fuhl & Kasneci select "a training image" by "the produced loss of a
   training image" and note that "for an exact determination of the probability based on the loss value, all
   data must be evaluated after each training batch"; the augmentation is the online augmentation a sample gets
   once it is in a batch (Sec. 3 and 5). The online (BBO) losses are those of augmented views.
4. logs ``lpbb/max_median_ratio``, ``lpbb/ess`` (normalised effective sample size, 1 = uniform),
   ``lpbb/seen_fraction`` every ``log_every_n_steps`` steps (``sampler_stats()``) and ``lpbb/refresh_seconds``.

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

from zoo.datamodules.base import SamplerFeedback
from zoo.datamodules.samplers.lpbb import all_gather_pairs

__all__ = ["LossFeedback"]


def feedback_of(trainer: L.Trainer) -> SamplerFeedback | None:
    """``trainer.datamodule`` when it implements the :class:`SamplerFeedback` hook, else None (plain loaders)."""
    dm = getattr(trainer, "datamodule", None)
    return dm if isinstance(dm, SamplerFeedback) else None


class LossFeedback(L.Callback):
    """Loss feedback for the LPBB sampler (Fuhl & Kasneci, ICMV 2019, Sec. 3 and 5: BBO / BB).

    Args:
        log_every_n_steps: how often to log ``lpbb/*`` statistics; default the trainer's
            ``log_every_n_steps``; 0 disables them.
    The refresh pass runs at the datamodule's ``eval_batch_size`` with its ``num_workers``.
    """

    def __init__(self, log_every_n_steps: int | None = None) -> None:
        if log_every_n_steps is not None and (isinstance(log_every_n_steps, bool)
                                              or not isinstance(log_every_n_steps, int) or log_every_n_steps < 0):
            raise ValueError(f"callbacks.loss_feedback.log_every_n_steps: got {log_every_n_steps!r}, expected null "
                             f"or an integer >= 0")
        self.log_every_n_steps = log_every_n_steps
        self.refreshes = 0
        self._warned_none = False

    # ---- online feedback -----------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        data = feedback_of(trainer)
        if data is None:
            return
        data.mark_trained(batch_idx + 1)
        if not data.takes_losses:
            return
        idx, loss = self._pairs(outputs, pl_module)
        idx, loss = all_gather_pairs(idx, loss)  # every rank takes part, even with an empty batch
        try:
            data.record_losses(idx, loss)
        except ValueError as e:
            raise ValueError(f"LossFeedback at global step {trainer.global_step} (batch {batch_idx} of epoch "
                             f"{trainer.current_epoch}): {e}") from e
        if data.refresh_every is not None:
            if self.refresh_due(batch_idx + 1, self.batches_per_epoch(trainer), data.refresh_every):
                self.refresh(trainer, pl_module, data)
        every = trainer.log_every_n_steps if self.log_every_n_steps is None else self.log_every_n_steps
        if every and (batch_idx + 1) % every == 0:
            stats = data.sampler_stats()
            for k in ("max_median_ratio", "ess", "seen_fraction"):
                if k in stats and math.isfinite(stats[k]):
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
    def batches_per_epoch(trainer: L.Trainer) -> int:
        nb = trainer.num_training_batches
        return int(nb) if math.isfinite(nb) else len(trainer.train_dataloader)

    @staticmethod
    def refresh_due(batch: int, batches: int, refresh_every: float) -> bool:
        """True after the ``batch``-th (1-based) of ``batches`` when it crosses a multiple of ``refresh_every *
        batches``: 1 / refresh_every evenly spaced refreshes per epoch (the paper's "every 10 % of an epoch" is 10,
        the last after the epoch's final batch), at most one per batch (every batch when the period is < 1)."""
        period = refresh_every * batches
        if period <= 1:
            return True
        def k(b: int) -> int:
            return math.floor(b / period + 1e-9)
        return k(batch) > k(batch - 1)

    def refresh(self, trainer: L.Trainer, pl_module: L.LightningModule, data: SamplerFeedback) -> None:
        """Recompute every training sample's loss (each rank its shard), gather, record them."""
        from lightning.pytorch.utilities import move_data_to_device

        t0 = time.perf_counter()
        loader = data.refresh_loader()
        modes = [(m, m.training) for m in pl_module.modules()]
        pl_module.eval()
        idx_l, loss_l = [], []
        try:
            with torch.inference_mode(), trainer.precision_plugin.forward_context():
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
        data.record_losses(idx, loss)
        self.refreshes += 1
        pl_module.log("lpbb/refresh_seconds", time.perf_counter() - t0, on_step=True, on_epoch=False, batch_size=1)
