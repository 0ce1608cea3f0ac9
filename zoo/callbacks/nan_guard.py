"""Stop training on the first NaN/inf loss, before the optimizer step and before any checkpoint.

The check runs in ``on_before_backward`` (after ``training_step``, before ``backward`` and
``optimizer.step``), so the weights are still the last finite ones and ModelCheckpoint never sees the
bad step: the best (and last) checkpoint on disk stay those of finite weights.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch

HINT = ("lower the learning rate (model.optimizer.lr), ramp the validation weight in more slowly "
        "(model.validation_weight / model.validation_warmup_steps), or clip gradients "
        "(trainer.gradient_clip_val)")


class NonFiniteLossError(FloatingPointError):
    """Raised by :class:`NaNGuard`; the message names the step, the batch indices and a hint."""


class NaNGuard(L.Callback):
    def __init__(self, max_indices: int = 64) -> None:
        self.max_indices = max_indices
        self._batch_index: Any = None
        self._batch_idx: int | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._batch_idx = batch_idx
        self._batch_index = batch.get("index") if isinstance(batch, dict) else None

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        idx = self._batch_index
        if torch.is_tensor(idx):
            idx = idx.detach().cpu().flatten().tolist()
        shown = idx if idx is None or len(idx) <= self.max_indices else f"{idx[:self.max_indices]} ..."
        raise NonFiniteLossError(
            f"non-finite training loss ({float(loss.detach().float().flatten()[0])}) at global step "
            f"{trainer.global_step} (epoch {trainer.current_epoch}, batch {self._batch_idx}); dataset indices "
            f"of the batch: {shown}. Training stopped before the optimizer step; checkpoints on disk are "
            f"untouched. Hint: {HINT}.")
