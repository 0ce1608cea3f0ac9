"""LossSchedule: the coordinate loss switches at the configured epochs (absolute or fractions)."""
import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from zoo.callbacks.loss_schedule import LossSchedule
from zoo.models.landmark import check_loss_schedule, stage_index


class Recorder(L.LightningModule):
    def __init__(self, schedule):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        self.loss_schedule = check_loss_schedule(schedule)
        self.stage = 0
        self.seen = []  # (epoch, stage) at every training step

    def set_loss_stage(self, stage):
        changed = stage != self.stage
        self.stage = stage
        return changed

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, self.stage))
        return self.lin(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(schedule, max_epochs):
    model = Recorder(schedule)
    trainer = L.Trainer(max_epochs=max_epochs, callbacks=[LossSchedule(verbose=False)], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        accelerator="cpu")
    trainer.fit(model, DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2))
    return sorted(set(model.seen))


def test_switches_at_absolute_epochs():
    sched = [{"epoch": 0, "loss": "l2"}, {"epoch": 2, "loss": "l1"}, {"epoch": 4, "loss": "wing", "omega": 10}]
    assert _fit(sched, 6) == [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2)]


def test_switches_at_fractions_of_max_epochs():
    sched = [{"fraction": 0.0, "loss": "l2"}, {"fraction": 0.34, "loss": "l1"}, {"fraction": 0.67, "loss": "wing"}]
    # round(0.34 * 9) = 3, round(0.67 * 9) = 6
    assert _fit(sched, 9) == [(e, 0 if e < 3 else 1 if e < 6 else 2) for e in range(9)]


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
