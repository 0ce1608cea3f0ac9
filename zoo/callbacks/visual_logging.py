"""Sample predictions coloured by the validation signal, logged during validation.

Every ``every_n_epochs`` validation epochs the first ``num_samples`` crops of the first validation batch are
drawn with :func:`zoo.models.landmark.sample_grid` (one :func:`zoo.metrics.landmarks.sample_figure` per
crop: ground truth as white crosses, predictions coloured by the predicted validation signal: green = low
predicted error, red = high; plain red without the validation head). The figure goes
to W&B as ``val/samples`` (``wandb.Image``) when a WandbLogger is attached, and is written as
``<log dir>/samples/epoch<NNN>.png`` otherwise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from zoo.models.landmark import sample_grid


class VisualLogging(L.Callback):
    def __init__(self, every_n_epochs: int = 1, num_samples: int = 8) -> None:
        if every_n_epochs < 1 or num_samples < 1:
            raise ValueError(f"callbacks.visual_logging: every_n_epochs and num_samples must be >= 1, got "
                             f"{every_n_epochs}, {num_samples}")
        self.every_n_epochs, self.num_samples = every_n_epochs, num_samples
        self._batch: dict[str, Any] | None = None

    def _active(self, trainer: L.Trainer) -> bool:
        return (trainer.is_global_zero and not trainer.sanity_checking
                and (trainer.current_epoch + 1) % self.every_n_epochs == 0)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch_idx != 0 or not self._active(trainer) or not isinstance(batch, dict) or "landmarks" not in batch:
            return
        k = self.num_samples
        with torch.no_grad():
            out = pl_module(batch["image"][:k])
        if not isinstance(out, dict) or "landmarks" not in out:
            return
        val = out.get("validation")
        self._batch = {"image": batch["image"][:k].float().cpu().numpy(),
                       "pred": out["landmarks"].float().cpu().numpy(),
                       "target": batch["landmarks"][:k].float().cpu().numpy(),
                       "validation": None if val is None else val.float().cpu().numpy()}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._batch is None or not self._active(trainer):
            return
        b, self._batch = self._batch, None
        grid = sample_grid(b["image"], b["pred"], b["target"], b["validation"], title=f"epoch {trainer.current_epoch}")
        from lightning.pytorch.loggers import WandbLogger

        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if wandb_loggers:
            import wandb

            for lg in wandb_loggers:
                lg.experiment.log({"val/samples": wandb.Image(grid), "trainer/global_step": trainer.global_step})
        else:
            import matplotlib.image

            # not trainer.log_dir: it broadcasts under DDP and this runs on rank 0 only
            lg = trainer.logger
            root = Path(getattr(lg, "log_dir", None) or trainer.default_root_dir) / "samples"
            root.mkdir(parents=True, exist_ok=True)
            matplotlib.image.imsave(root / f"epoch{trainer.current_epoch:03d}.png", grid)
