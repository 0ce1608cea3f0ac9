"""The models' NaN guard (ZooModule.guard): a NaN in the training step stops training with the step, the
batch's dataset indices, the loss/lr values and a hint -- before the loss's own input checks, before the
optimizer step and before any checkpoint, so the best checkpoint on disk stays intact."""
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, Dataset

from zoo.models.base import NonFiniteLossError
from zoo.models.landmark import LandmarkRegressor

BAD = 13  # dataset index whose image holds a NaN (batch 3 of an unshuffled loader with batch size 4)


class Faces(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        image = torch.rand(1, 32, 32, generator=g)
        if i == BAD:
            image[0, 5, 5] = float("nan")
        return {"image": image, "landmarks": 8 + torch.rand(5, 2, generator=g) * 16,
                "visible": torch.ones(5, dtype=torch.bool), "norm": torch.tensor(10.0), "index": torch.tensor(i)}


def model(**kw):
    torch.manual_seed(0)
    return LandmarkRegressor(num_landmarks=5, image_size=32, channels=1, head_hidden=8, channels_last=False,
                             loss_schedule=[{"epoch": 0, "loss": "l2"}], validation_warmup_steps=0, **kw)


def test_nan_output_stops_before_loss_step_and_checkpoint(tmp_path):
    m = model()
    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="train/loss", mode="min", save_top_k=1, save_last=True,
                           every_n_train_steps=1, filename="best-{step}")
    trainer = L.Trainer(max_epochs=1, callbacks=[ckpt], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", limit_val_batches=0)
    with pytest.raises(NonFiniteLossError) as e:
        trainer.fit(m, DataLoader(Faces(), batch_size=4, shuffle=False))
    msg = str(e.value)
    assert "global step 3" in msg and "[12, 13, 14, 15]" in msg and "network output" in msg
    assert "learning rate(s): [0.01]" in msg and "gradient_clip_val" in msg
    # no optimizer step with the NaN batch: 3 steps, finite weights
    assert trainer.global_step == 3
    assert all(torch.isfinite(p).all() for p in m.parameters())
    files = sorted(tmp_path.glob("*.ckpt"))
    assert files, "expected checkpoints from the finite steps"
    for f in files:
        sd = torch.load(f, map_location="cpu", weights_only=False)
        assert sd["global_step"] <= 3
        assert all(torch.isfinite(v).all() for v in sd["state_dict"].values() if v.is_floating_point())
    assert ckpt.best_model_score is not None and torch.isfinite(ckpt.best_model_score)


def test_non_finite_loss_is_caught_too():
    m = model(validation_head=False)
    class Exploding(torch.nn.Module):  # a loss that overflows on finite input
        def forward(self, pred, target, weight):
            return (pred - target).pow(2).sum((-1, -2)) * float("inf")

    m.criterion = Exploding()
    trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, accelerator="cpu", limit_val_batches=0)
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(inf\) at global step 0.*\[0, 1, 2, 3\]"):
        trainer.fit(m, DataLoader(Faces(), batch_size=4, shuffle=False))


def test_finite_run_passes():
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, accelerator="cpu", limit_val_batches=0)
    trainer.fit(model(), DataLoader(Faces(), batch_size=4))
    assert trainer.global_step == 2


def test_recognition_model_names_the_embedding_not_the_loss_check():
    from zoo.models.recognition import FaceNetTriplet

    torch.manual_seed(0)
    m = FaceNetTriplet(backbone="nn4small", channels=3, image_size=64)
    image = torch.rand(6, 3, 64, 64)
    image[2, 0, 3, 3] = float("nan")
    batch = {"image": image, "identity": torch.tensor([0, 0, 1, 1, 2, 2]), "index": torch.arange(6) + 100}
    m.on_train_batch_start(batch, 0)
    with pytest.raises(NonFiniteLossError, match=r"network output \(embedding\).*\[100, 101, 102, 103, 104, 105\]"):
        m.training_step(batch, 0)
