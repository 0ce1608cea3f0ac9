"""Log the identity-GAN sample grid (seed 003 Fig. 7: identity rows × attribute columns) every n validation epochs.

The images are the first ``size`` identities of the validation split (one image each; the training split when
there is no validation split) and, as attribute sources, images of ``size`` other identities. Cell (i, j) is
``G(f_I(identity_i), μ_A(attribute_j))`` (:meth:`zoo.models.identity_gan.IdentityGanModel.sample_grid`). The grid
goes to W&B as ``samples/identity_attribute_grid`` when a WandbLogger is attached, else to
``<log dir>/identity_grid_epochNNN.png``. No-op for models without ``sample_grid``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch


def grid_images(ds: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(identity images, attribute images) from ``ds``: first image of the first ``size`` identities, and the
    first image of the next ``size`` identities (fewer when the split has fewer identities)."""
    labels = np.asarray(ds.identities)
    firsts = [int(np.flatnonzero(labels == k)[0]) for k in np.unique(labels)]
    ids = firsts[:size]
    atts = firsts[size:2 * size] or [int(np.flatnonzero(labels == labels[i])[-1]) for i in ids]
    return (torch.stack([ds[i]["image"] for i in ids]), torch.stack([ds[i]["image"] for i in atts]))


class IdentityGrid(L.Callback):
    def __init__(self, every_n_epochs: int = 1, size: int | None = None) -> None:
        self.every_n_epochs, self.size = int(every_n_epochs), size
        self.paths: list[Path] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.sanity_checking or not hasattr(pl_module, "sample_grid")
                or trainer.current_epoch % max(1, self.every_n_epochs)):
            return
        # trainer.log_dir broadcasts under DDP: every rank asks, before the rank-0-only part
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not trainer.is_global_zero:
            return
        dm = getattr(trainer, "datamodule", None)
        datasets = getattr(dm, "datasets", None) or {}
        ds = datasets.get("val") or datasets.get("train")
        if ds is None or not hasattr(ds, "identities"):
            return
        ids, atts = grid_images(ds, self.size or getattr(pl_module, "grid_size", 4))
        grid = pl_module.sample_grid(ids.to(pl_module.device), atts.to(pl_module.device))
        caption = (f"epoch {trainer.current_epoch}: rows = identity images (left column), columns = attribute "
                   f"images (top row); cell = G(f_I(row), mu_A(column))")
        from lightning.pytorch.loggers import WandbLogger

        for lg in trainer.loggers or []:
            if isinstance(lg, WandbLogger):
                import wandb

                lg.experiment.log({"samples/identity_attribute_grid": wandb.Image(grid, caption=caption),
                                   "trainer/global_step": trainer.global_step})
                return
        import cv2

        out = Path(log_dir) / f"identity_grid_epoch{trainer.current_epoch:03d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        self.paths.append(out)
