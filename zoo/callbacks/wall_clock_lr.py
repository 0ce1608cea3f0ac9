"""Learning-rate schedule over the training *budget* (wall time or epochs, whichever ends first).

A run limited by ``trainer.max_time`` (e.g. ``experiment=real_cpu``: 30 minutes) does not know in advance how
many steps it will get, so an epoch- or step-indexed cosine either ends early (lr still high when the clock
stops) or never finishes. :class:`WallClockLR` sets every parameter group's learning rate before each
training step from the run's progress ``t`` in [0, 1]:

    t      = max(elapsed training time / trainer.max_time,                   (when max_time is set)
                 (epoch + batch / batches per epoch) / trainer.max_epochs,   (when max_epochs > 0)
                 global_step / trainer.max_steps)                            (when max_steps > 0)
    lr(t)  = base_lr · t / warmup                                      for t < warmup (linear warm-up)
    lr(t)  = base_lr · (final + (1 − final) · ½ (1 + cos(π (t − warmup) / (1 − warmup))))   otherwise

(warm-up followed by cosine annealing, Loshchilov & Hutter, "SGDR", ICLR 2017; Goyal et al. 2017 for the
warm-up), where ``base_lr`` is the optimizer's configured lr and ``final`` the ratio reached at the end.
The elapsed time is Lightning's own ``Timer`` (the one that stops the run at ``max_time``; it counts the
training stage, validation included, and is restored on resume), so the schedule ends when the run does,
on any machine and under any load. ``trainer.max_time=00:02:00:00`` or a GPU stretches it without edits.
"""
from __future__ import annotations

import math
import time
from typing import Any

import lightning as L

from zoo.checks import check_number


def wall_clock_factor(t: float, warmup: float, final: float) -> float:
    """The lr multiplier at progress ``t`` (module docstring)."""
    t = min(max(float(t), 0.0), 1.0)
    if warmup > 0 and t < warmup:
        return max(t / warmup, 1e-3)
    span = 1.0 - warmup
    u = 1.0 if span <= 0 else (t - warmup) / span
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * u))


def training_progress(trainer: L.Trainer, batch_idx: int = 0) -> float:
    """Progress in [0, 1] of the run: the largest of its time, epoch and step fractions (module docstring)."""
    from lightning.pytorch.callbacks import Timer

    fracs = [0.0]
    for cb in trainer.callbacks:
        if isinstance(cb, Timer) and cb._duration:
            fracs.append(cb.time_elapsed("train") / cb._duration)
    if trainer.max_epochs and trainer.max_epochs > 0:
        nb = trainer.num_training_batches
        within = batch_idx / nb if isinstance(nb, int) and nb > 0 else 0.0
        fracs.append((trainer.current_epoch + within) / trainer.max_epochs)
    if trainer.max_steps and trainer.max_steps > 0:
        fracs.append(trainer.global_step / trainer.max_steps)
    return min(1.0, max(fracs))


class WallClockLR(L.Callback):
    """Warm-up + cosine learning rate over the run's budget (module docstring).

    Args:
        warmup: fraction of the budget with a linear warm-up from ~0 to the base lr, in [0, 1).
        final: lr at the end as a fraction of the base lr, in [0, 1].

    Use it instead of a ``model.scheduler`` (``model.scheduler=null``); both would fight over the lr.
    Logs ``train/progress``, ``train/lr`` and, at each validation, ``time/train_min`` (training-stage wall
    minutes: Lightning's Timer when ``max_time`` is set, else since the start of training), for learning curves.
    """

    def __init__(self, warmup: float = 0.05, final: float = 0.01) -> None:
        self.warmup = check_number("callbacks.wall_clock_lr.warmup", warmup, low=0.0, high=1.0, low_inclusive=True)
        self.final = check_number("callbacks.wall_clock_lr.final", final, low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
        self._base: list[list[float]] | None = None
        self._t0 = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.lr_scheduler_configs:
            raise ValueError("callbacks.wall_clock_lr sets the learning rate itself; drop the model's scheduler "
                             "(model.scheduler=null) or the callback (callbacks.wall_clock_lr=null)")
        self._t0 = time.monotonic()
        self._base = [[g.get("initial_lr", g["lr"]) for g in opt.param_groups] for opt in trainer.optimizers]
        for opt, base in zip(trainer.optimizers, self._base):
            for g, lr in zip(opt.param_groups, base):
                g["initial_lr"] = lr  # the configured lr survives resume (the optimizer state holds the current lr)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._base is None:
            return
        t = training_progress(trainer, batch_idx)
        f = wall_clock_factor(t, self.warmup, self.final)
        for opt, base in zip(trainer.optimizers, self._base):
            for g, lr in zip(opt.param_groups, base):
                g["lr"] = lr * f
        pl_module.log("train/progress", t, on_step=True, on_epoch=False)
        pl_module.log("train/lr", lr * f, on_step=True, on_epoch=False)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.callbacks import Timer

        if trainer.sanity_checking:
            return
        timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
        elapsed = timers[0].time_elapsed("train") if timers else time.monotonic() - self._t0
        pl_module.log("time/train_min", elapsed / 60.0)
