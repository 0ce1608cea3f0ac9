"""Log the GAN-augmented data's grid (real crop / GAN reconstruction / edit framed green = kept, red = rejected by
the landmark-disagreement filter) once at the start of training.

No-op unless the datamodule has ``gan_preview()`` (``data=gan_augmented``, zoo.datamodules.gan_augmented). The
figure goes to W&B as ``data/gan_grid`` (``wandb.Image``, with the keep rate and inversion quality in the caption)
when a WandbLogger is attached, and is written as ``<log dir>/gan_grid.png`` otherwise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L


class GanGrid(L.Callback):
    def __init__(self, scale: int = 2) -> None:
        self.scale = int(scale)
        self.logged = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = getattr(trainer, "datamodule", None)
        if self.logged or dm is None or not hasattr(dm, "gan_preview"):
            return
        # trainer.log_dir broadcasts under DDP: every rank asks for it, only rank 0 draws and writes
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not trainer.is_global_zero:
            return
        preview = dm.gan_preview()
        if not preview or not len(preview.get("edits", [])):
            return
        from zoo.datamodules.gan_augmented import preview_grid

        grid = preview_grid(preview, self.scale)
        report = {k: v for k, v in (getattr(dm, "report", {}) or {}).items() if k != "preview"}
        caption = (f"top: real, middle: GAN reconstruction, bottom: edit (green kept, red rejected); "
                   f"keep rate {report.get('keep_rate')}, inversion {report.get('inversion_quality')}")
        self.logged = True
        from lightning.pytorch.loggers import WandbLogger

        loggers = trainer.loggers or []
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                import wandb

                lg.experiment.log({"data/gan_grid": wandb.Image(grid, caption=caption)})
                return
        import cv2

        out = Path(log_dir) / "gan_grid.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        self.path: Any = out
