"""Sample predictions coloured by the validation signal, logged during validation.

Every ``every_n_epochs`` validation epochs the first ``num_samples`` crops of the first validation batch are
drawn with their ground truth (white rings) and predictions (dots coloured by the predicted validation
signal: green = low predicted error, red = high; plain blue without the validation head). The figure goes
to W&B as ``val/samples`` (``wandb.Image``) when a WandbLogger is attached, and is written as
``<log dir>/samples/epoch<NNN>.png`` otherwise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch


def render_predictions(images: np.ndarray, pred: np.ndarray, target: np.ndarray | None = None,
                       validation: np.ndarray | None = None, cols: int = 4, title: str | None = None):
    """Matplotlib figure of crops [N, C, H, W] (or [N, H, W]) with predicted landmarks [N, L, 2] coloured by
    ``validation`` [N, L] (shared colour scale, colour bar in pixels) and optional ground truth."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(images)
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows + 0.4), squeeze=False)
    vmax = float(np.nanpercentile(validation, 99)) if validation is not None and validation.size else 1.0
    sc = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.ndim == 3:
            img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        lo, hi = float(np.min(img)), float(np.max(img))
        ax.imshow((img - lo) / (hi - lo + 1e-8), cmap="gray" if img.ndim == 2 else None)
        if target is not None:
            ax.scatter(target[i, :, 0], target[i, :, 1], s=14, facecolors="none", edgecolors="white", linewidths=0.6)
        if validation is not None:
            sc = ax.scatter(pred[i, :, 0], pred[i, :, 1], s=6, c=validation[i], cmap="RdYlGn_r", vmin=0,
                            vmax=max(vmax, 1e-6))
        else:
            ax.scatter(pred[i, :, 0], pred[i, :, 1], s=6, c="tab:blue")
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), shrink=0.8, label="validation signal (px)")
    if title:
        fig.suptitle(title)
    return fig


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
        import matplotlib.pyplot as plt

        fig = render_predictions(b["image"], b["pred"], b["target"], b["validation"],
                                 title=f"epoch {trainer.current_epoch}")
        try:
            from lightning.pytorch.loggers import WandbLogger

            wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
            if wandb_loggers:
                import wandb

                for lg in wandb_loggers:
                    lg.experiment.log({"val/samples": wandb.Image(fig), "trainer/global_step": trainer.global_step})
            else:
                # not trainer.log_dir: it broadcasts under DDP and this runs on rank 0 only
                lg = trainer.logger
                root = Path(getattr(lg, "log_dir", None) or trainer.default_root_dir) / "samples"
                root.mkdir(parents=True, exist_ok=True)
                fig.savefig(root / f"epoch{trainer.current_epoch:03d}.png", dpi=80)
        finally:
            plt.close(fig)
