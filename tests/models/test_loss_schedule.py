"""The landmark model's loss schedule: the coordinate loss switches at the configured epochs (absolute or
fractions of trainer.max_epochs), checked against hand-computed epoch -> stage tables."""
import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.models.landmark import LandmarkRegressor, check_loss_schedule, stage_index



class Faces(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"image": torch.rand(1, 32, 32, generator=g), "landmarks": torch.rand(5, 2, generator=g) * 31,
                "visible": torch.ones(5, dtype=torch.bool), "norm": torch.tensor(10.0), "index": torch.tensor(i)}


class Recorder(LandmarkRegressor):
    """Records (epoch, coordinate-loss class) at every training step."""

    def __init__(self, **kw):
        super().__init__(num_landmarks=5, image_size=32, channels=1, head_hidden=8, validation_head=False,
                         channels_last=False, **kw)
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, type(self.criterion).__name__))
        return super().training_step(batch, batch_idx)


def _fit(schedule, max_epochs):
    model = Recorder(loss_schedule=schedule)
    trainer = L.Trainer(max_epochs=max_epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, accelerator="cpu", limit_val_batches=0)
    trainer.fit(model, DataLoader(Faces(), batch_size=2))
    return sorted(set(model.seen))


def test_switches_at_absolute_epochs():
    sched = [{"epoch": 0, "loss": "l2"}, {"epoch": 2, "loss": "l1"}, {"epoch": 4, "loss": "wing", "omega": 10}]
    names = ["L2Loss", "L2Loss", "L1Loss", "L1Loss", "WingLoss", "WingLoss"]
    assert _fit(sched, 6) == sorted((e, n) for e, n in enumerate(names))


def test_switches_at_fractions_of_max_epochs():
    sched = [{"fraction": 0.0, "loss": "l2"}, {"fraction": 0.34, "loss": "l1"}, {"fraction": 0.67, "loss": "wing"}]
    # round(0.34 * 9) = 3, round(0.67 * 9) = 6
    want = [(e, "L2Loss" if e < 3 else "L1Loss" if e < 6 else "WingLoss") for e in range(9)]
    assert _fit(sched, 9) == want


def test_stage_index_hand_cases():
    sched = [{"epoch": 0, "loss": "l2"}, {"epoch": 10, "loss": "l1"}, {"epoch": 20, "loss": "wing"}]
    assert [stage_index(sched, e, None) for e in (0, 9, 10, 19, 20, 500)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("bad,match", [
    ([], "at least one stage"),
    ([{"epoch": 1, "loss": "l2"}], "start at epoch 0"),
    ([{"epoch": 0, "loss": "l2"}, {"epoch": 0, "loss": "l1"}], "strictly increasing"),
    ([{"epoch": 0}], "needs a 'loss'"),
    ([{"epoch": 0, "fraction": 0.0, "loss": "l2"}], "exactly one"),
    ([{"fraction": 1.5, "loss": "l2"}], r"\[0, 1\)"),
])
def test_bad_schedules_name_the_stage(bad, match):
    with pytest.raises(ValueError, match=match):
        check_loss_schedule(bad)
