"""Loss-stage schedule: switch the model's coordinate loss at given epochs.

Seed 002 (Fuhl & Kasneci, ICMV 2019, Sec. 5) trains in three stages: L2, then L1, then Wing (ω=10, ε=2).
The schedule is a list ``[{epoch: 0, loss: l2}, {epoch: 10, loss: l1}, {epoch: 20, loss: wing, omega: 10,
epsilon: 2}]`` (or ``fraction:`` of ``trainer.max_epochs`` instead of ``epoch:``), stored on the model
(``model.loss_schedule``) so checkpoints carry it. At the start of every training epoch this callback
picks the stage whose start is the largest one <= the current epoch and calls
``pl_module.set_loss_stage(i)``; a resumed run therefore lands in the right stage. The stage is logged
as ``train/loss_stage``.
"""
from __future__ import annotations

from typing import Any, Sequence

import lightning as L

from zoo.models.landmark import check_loss_schedule, stage_index


class LossSchedule(L.Callback):
    """Apply ``schedule`` (default: the model's ``loss_schedule``) at every training epoch start."""

    def __init__(self, schedule: Sequence[dict[str, Any]] | None = None, verbose: bool = True) -> None:
        self.schedule = check_loss_schedule(schedule) if schedule is not None else None
        self.verbose = verbose

    def _schedule(self, pl_module: L.LightningModule) -> list[dict[str, Any]] | None:
        if self.schedule is not None:
            if hasattr(pl_module, "loss_schedule"):
                pl_module.loss_schedule = self.schedule
            return self.schedule
        return getattr(pl_module, "loss_schedule", None)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        schedule = self._schedule(pl_module)
        if not schedule or not hasattr(pl_module, "set_loss_stage"):
            return
        i = stage_index(schedule, trainer.current_epoch, trainer.max_epochs)
        if pl_module.set_loss_stage(i) and self.verbose and trainer.is_global_zero:
            st = schedule[i]
            args = {k: v for k, v in st.items() if k not in ("loss", "epoch", "fraction")}
            print(f"[LossSchedule] epoch {trainer.current_epoch}: coordinate loss -> {st['loss']} {args or ''}")
