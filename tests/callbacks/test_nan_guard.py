"""NaNGuard: a NaN loss stops training with step, indices and hint, before the optimizer step and before
any checkpoint is written."""
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, Dataset

from zoo.callbacks.nan_guard import NaNGuard, NonFiniteLossError


class Pairs(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"image": torch.randn(4, generator=g), "target": torch.randn(1, generator=g), "index": torch.tensor(i)}


class Tiny(L.LightningModule):
    def __init__(self, nan_at_step: int):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        self.nan_at_step = nan_at_step

    def training_step(self, batch, batch_idx):
        loss = ((self.lin(batch["image"]) - batch["target"]) ** 2).mean()
        if self.global_step == self.nan_at_step:
            loss = loss * float("nan")
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_nan_loss_stops_before_step_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Tiny(nan_at_step=3)
    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="train_loss", mode="min", save_top_k=1, save_last=True,
                           every_n_train_steps=1, filename="best-{step}")
    trainer = L.Trainer(max_epochs=1, callbacks=[NaNGuard(), ckpt], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    loader = DataLoader(Pairs(), batch_size=4, shuffle=False)
    with pytest.raises(NonFiniteLossError) as e:
        trainer.fit(model, loader)
    msg = str(e.value)
    assert "global step 3" in msg
    assert "[12, 13, 14, 15]" in msg  # batch 3 of an unshuffled loader with batch size 4
    assert "learning rate" in msg and "gradient_clip_val" in msg
    # no optimizer step with the NaN loss: weights are finite, 3 steps taken
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert trainer.global_step == 3
    # every checkpoint on disk is from before the NaN step and holds finite weights
    files = sorted(tmp_path.glob("*.ckpt"))
    assert files, "expected checkpoints from the finite steps"
    for f in files:
        sd = torch.load(f, map_location="cpu", weights_only=False)
        assert sd["global_step"] <= 3
        assert all(torch.isfinite(v).all() for v in sd["state_dict"].values())
    assert ckpt.best_model_score is not None and torch.isfinite(ckpt.best_model_score)


def test_finite_loss_passes(tmp_path):
    trainer = L.Trainer(max_steps=2, callbacks=[NaNGuard()], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu")
    trainer.fit(Tiny(nan_at_step=-1), DataLoader(Pairs(), batch_size=4))
    assert trainer.global_step == 2
