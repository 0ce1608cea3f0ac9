"""WallClockLR: warm-up + cosine learning rate over the run's budget (time, epochs or steps)."""
import math
from datetime import timedelta

import lightning as L
import pytest
import torch

from zoo.callbacks.wall_clock_lr import WallClockLR, training_progress, wall_clock_factor


def test_factor_hand_computed_points():
    # warm-up 10 %, final 1 %: linear to 1 at t = 0.1, then cosine from 1 to 0.01
    assert wall_clock_factor(0.05, 0.1, 0.01) == pytest.approx(0.5)
    assert wall_clock_factor(0.1, 0.1, 0.01) == pytest.approx(1.0)
    assert wall_clock_factor(0.55, 0.1, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)  # half-way: cos(pi/2) = 0
    assert wall_clock_factor(1.0, 0.1, 0.01) == pytest.approx(0.01)
    assert wall_clock_factor(2.0, 0.1, 0.01) == pytest.approx(0.01)  # clamped after the end
    t = 0.3
    assert wall_clock_factor(t, 0.0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * t)))


@pytest.mark.parametrize("kw, key", [({"warmup": 1.0}, "warmup"), ({"warmup": -0.1}, "warmup"),
                                     ({"final": 1.5}, "final"), ({"final": "x"}, "final")])
def test_bad_settings_name_the_key(kw, key):
    with pytest.raises(ValueError, match=f"callbacks.wall_clock_lr.{key}"):
        WallClockLR(**kw)


class _Tiny(L.LightningModule):
    def __init__(self, scheduler: bool = False):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        self.scheduler, self.lrs = scheduler, []

    def training_step(self, batch, batch_idx):
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        return self.lin(batch[0]).square().mean()

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        if self.scheduler:
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1)}
        return opt

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 2)), batch_size=5)


def _trainer(**kw):
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, accelerator="cpu", **kw)


def test_epoch_budget_follows_the_formula_step_by_step():
    model = _Tiny()
    _trainer(max_epochs=3, callbacks=[WallClockLR(warmup=0.25, final=0.1)]).fit(model)
    # 4 batches per epoch, 12 steps: progress of step k = k / 12
    expected = [0.1 * wall_clock_factor(k / 12, 0.25, 0.1) for k in range(12)]
    assert model.lrs == pytest.approx(expected)
    assert model.lrs[0] < model.lrs[3] and model.lrs[-1] < model.lrs[3]


def test_time_budget_drives_progress():
    trainer = _trainer(max_time=timedelta(seconds=100), max_epochs=1000)
    timer = [cb for cb in trainer.callbacks if type(cb).__name__ == "Timer"][0]
    timer.time_elapsed = lambda stage="train": 25.0  # a quarter of the wall-clock budget spent
    assert training_progress(trainer) == pytest.approx(0.25)


def test_refuses_a_second_scheduler():
    with pytest.raises(ValueError, match=r"model.scheduler=null"):
        _trainer(max_epochs=1, callbacks=[WallClockLR()]).fit(_Tiny(scheduler=True))
