"""``ZooModule``: what every zoo LightningModule shares, written once.

* optimiser and scheduler from config factories (Hydra ``_partial_`` nodes of ``configs/model/optimizer`` and
  ``configs/model/scheduler``): ``optimizer(param_groups()) -> torch.optim.Optimizer``,
  ``scheduler(optimizer)`` stepped every ``scheduler_interval`` ("epoch" or "step"); without a factory the
  class's :meth:`default_optimizer`;
* channels-last memory format (faster convolutions on CPU) for the network and its input images;
* hyper-parameters saved as plain containers without the optimiser/scheduler factories, so that
  ``load_from_checkpoint`` and :mod:`zoo.export` rebuild the model from the checkpoint alone;
* the report of the last ``trainer.test``: ``metrics.json`` (the scalars of ``test_results["metrics"]``) plus
  the task's figures (:meth:`write_figures`), what evaluate.py writes and logs;
* the guard of the training step: a non-finite network output or loss stops training with the step, the
  batch's dataset indices, the loss and learning-rate values and a hint -- in place of the loss's own input
  check error -- before the backward pass or any checkpoint (:meth:`guarding` around the loss call,
  :meth:`guard` on the loss: one device sync per step).

Subclasses set ``task`` (the DataInfo task they train on) and ``default_monitor`` (metric, mode) that a
ModelCheckpoint/EarlyStopping with ``monitor: null`` watches (:func:`zoo.run.build_callbacks`).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import lightning as L
import torch

from zoo.loggers import flatten_metrics

NAN_HINT = ("lower the learning rate (model.optimizer.lr), ramp the validation weight in more slowly "
            "(model.validation_weight / model.validation_warmup_steps), or clip gradients "
            "(trainer.gradient_clip_val)")


class NonFiniteLossError(FloatingPointError):
    """A NaN/inf network output or loss in the training step; the message names the step, the batch's dataset
    indices, the loss and learning rate, and a hint."""


def plain(x: Any) -> Any:
    """OmegaConf containers -> plain Python containers (checkpoint hyper-parameters stay loadable with
    ``torch.load(weights_only=True)``)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(x, (DictConfig, ListConfig)):
        return OmegaConf.to_container(x, resolve=True)
    if isinstance(x, Mapping):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


class ZooModule(L.LightningModule):
    task: str = ""
    default_monitor: tuple[str, str] | None = None

    def __init__(self, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 scheduler: Callable[..., Any] | None = None, scheduler_interval: str = "epoch",
                 channels_last: bool = False) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"model.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.channels_last = bool(channels_last)
        self.test_results: dict[str, Any] | None = None
        self._batch_index: Any = None

    # ---- construction helpers -------------------------------------------------------------------------
    def save_config(self, args: Mapping[str, Any]) -> None:
        """Save the constructor arguments ``args`` as hyper-parameters (plain containers, without the
        optimizer/scheduler factories)."""
        self.save_hyperparameters(plain({k: v for k, v in args.items() if k not in ("optimizer", "scheduler")}))

    def apply_channels_last(self) -> None:
        """Put the parameters in channels-last format when ``channels_last`` (call at the end of __init__)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def as_input(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` in the memory format the network runs in."""
        if self.channels_last and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    # ---- optimisation ---------------------------------------------------------------------------------
    @staticmethod
    def default_optimizer(params: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=1e-3)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizers(self) -> Any:
        opt = (self.optimizer_factory or self.default_optimizer)(self.param_groups())
        if self.scheduler_factory is None:
            return opt
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": self.scheduler_factory(opt), "interval": self.scheduler_interval}}

    # ---- checks before training ------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.check_training_batches()

    def check_training_batches(self) -> None:
        """Fail before training when the training loader yields no batch (``data.batch_size`` larger than the
        training split, incomplete batches dropped) instead of "training" nothing and testing an untrained net."""
        t = self._trainer
        dm = getattr(t, "datamodule", None) if t is not None else None
        if dm is None or hasattr(dm, "check_train_batches"):
            return  # zoo's FaceDataModule checks this itself (per rank, before the sampler is built)
        try:
            n = len(dm.train_dataloader())
        except TypeError:  # an iterable loader without a length: cannot tell
            return
        if n == 0:
            ds = (getattr(dm, "datasets", None) or {}).get("train")
            size = f"{len(ds)} samples" if ds is not None else "too few samples"
            raise ValueError(
                f"data.batch_size={getattr(dm, 'batch_size', '?')}: the training split has {size}, so the training "
                f"loader yields 0 batches (incomplete batches are dropped) and nothing would be trained; expected "
                f"data.batch_size <= the training-set size (lower data.batch_size, or use more training data)")

    # ---- training-step guard --------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._batch_index = batch.get("index") if isinstance(batch, Mapping) else None

    @contextlib.contextmanager
    def guarding(self, what: str, *outputs: torch.Tensor | None, batch: Mapping[str, Any] | None = None):
        """Run the loss on ``outputs``; when it raises (the losses check their inputs), name a non-finite output
        through :meth:`guard` instead. Costs nothing while the outputs are finite (no extra device sync)."""
        try:
            yield
        except ValueError:
            for value in outputs:
                self.guard(what, value, batch)
            raise

    def guard(self, what: str, value: torch.Tensor | None, batch: Mapping[str, Any] | None = None) -> None:
        """Raise :class:`NonFiniteLossError` when ``value`` (network output or loss of the current training
        batch, or of the evaluation ``batch`` given) holds NaN/inf: the weights are still the last finite ones and
        no checkpoint has seen the step."""
        if value is None or bool(torch.isfinite(value.detach()).all()):
            return
        idx = batch.get("index") if batch is not None else self._batch_index
        if torch.is_tensor(idx):
            idx = idx.detach().cpu().flatten().tolist()
        if isinstance(idx, list) and len(idx) > 64:
            idx = f"{idx[:64]} ..."
        bad = value.detach().float().flatten()
        bad = bad[~torch.isfinite(bad)][:1].item()
        t = self._trainer
        lrs = [g["lr"] for opt in (t.optimizers if t is not None else []) for g in opt.param_groups]
        step = f"global step {t.global_step} (epoch {t.current_epoch})" if t is not None else "a training step"
        raise NonFiniteLossError(
            f"non-finite {what} ({bad}) at {step}; dataset indices of the batch: {idx}; learning rate(s): {lrs}. "
            f"Stopped before the optimizer step and before any checkpoint of this step; checkpoints on disk are "
            f"untouched. Hint: {NAN_HINT}.")

    # ---- report ---------------------------------------------------------------------------------------
    def write_report(self, out_dir: str | Path) -> dict[str, float]:
        """Write ``metrics.json`` (scalars) and the task's figures of the last ``trainer.test`` run to
        ``out_dir``; return the scalar metrics (what evaluate.py logs)."""
        if not self.test_results:
            raise ValueError(f"{type(self).__name__}.write_report: run trainer.test(model, datamodule=...) first "
                             f"(no test results)")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        scalars = flatten_metrics(self.test_results["metrics"])
        (out / "metrics.json").write_text(json.dumps(scalars, indent=1, sort_keys=True))
        self.write_figures(out)
        return scalars

    def write_figures(self, out: Path) -> None:
        """PNG figures of ``self.test_results`` into ``out`` (task specific)."""
