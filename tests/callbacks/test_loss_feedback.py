"""LossFeedback: online updates, the BB refresh, exact mid-epoch resume and a 2-process DDP fit."""
from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from zoo.callbacks.loss_feedback import LossFeedback
from zoo.datamodules.base import FaceDataModule
from zoo.datamodules.samplers.lpbb import LPBBSampler
from zoo.datamodules.samplers.uniform import UniformSampler


# ---- tiny task: linear regression on dict samples with an "index" -----------------------------------------
class DictDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 48) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.3 * torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "index": torch.tensor(i)}


class TinyDM(FaceDataModule):
    def build_datasets(self):
        return {"train": DictDataset(), "val": None, "test": None}


class TinyModel(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 1)
        self.frozen = torch.nn.Dropout(0.5)  # a submodule the user keeps in eval mode
        self.modes_seen: list[tuple[bool, bool]] = []

    def _losses(self, batch):
        return (self.lin(self.frozen(batch["x"])).squeeze(-1) - batch["y"]) ** 2

    def on_train_start(self) -> None:
        self.frozen.eval()

    def training_step(self, batch, batch_idx):
        self.modes_seen.append((self.training, self.frozen.training))
        per = self._losses(batch)
        return {"loss": per.mean(), "per_sample_loss": per.detach(), "index": batch["index"]}

    @torch.no_grad()
    def per_sample_loss(self, batch):
        return self._losses(batch), batch["index"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class DumpSampler(L.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer, pl_module):
        s = trainer.datamodule.train_sampler
        torch.save({"loss": torch.from_numpy(s.loss), "seen": torch.from_numpy(s.seen), "world": s.world_size},
                   Path(self.out_dir) / f"fit_rank{trainer.global_rank}.pt")


def _trainer(tmp_path, **kw):
    base = dict(accelerator="cpu", devices=1, max_epochs=2, use_distributed_sampler=False, logger=False,
                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                default_root_dir=str(tmp_path), num_sanity_val_steps=0)
    base.update(kw)
    return L.Trainer(**base)


# ---- unit ---------------------------------------------------------------------------------------------------
def _fake(sampler, n_batches=10):
    dm = TinyDM(batch_size=3, num_workers=0)
    dm.train_sampler = sampler  # what train_dataloader() would have built
    trainer = SimpleNamespace(datamodule=dm, num_training_batches=n_batches, log_every_n_steps=0)
    return trainer, SimpleNamespace(device=torch.device("cpu"))


def test_online_update_and_progress_without_lightning_loop():
    s = LPBBSampler(range(10), batch_size=3)
    cb = LossFeedback(log_every_n_steps=0)
    trainer, module = _fake(s)
    out = {"loss": torch.tensor(1.0), "per_sample_loss": torch.tensor([4.0, 2.0, 6.0]),
           "index": torch.tensor([7, 1, 7])}
    cb.on_train_batch_end(trainer, module, out, None, 4)
    np.testing.assert_allclose(s.loss[[1, 7]], [2.0, 5.0])  # 7 drawn twice: mean of 4 and 6
    assert s.seen.sum() == 2 and s.state_dict()["step"] == 5
    with pytest.raises(ValueError, match="per_sample_loss"):
        cb.on_train_batch_end(trainer, module, {"loss": torch.tensor(1.0)}, None, 5)
    with pytest.warns(RuntimeWarning, match="returned None"):
        cb.on_train_batch_end(trainer, module, None, None, 5)
    assert s.seen.sum() == 2
    # a uniform sampler only gets the progress
    u = UniformSampler(range(10), batch_size=3)
    cb.on_train_batch_end(_fake(u)[0], module, out, None, 1)
    assert u.state_dict()["position"] == 6
    with pytest.raises(ValueError, match="log_every_n_steps"):
        LossFeedback(log_every_n_steps=-1)


# ---- Lightning, one process ------------------------------------------------------------------------------
def test_refresh_mode_table_equals_the_final_models_losses(tmp_path):
    """refresh_every=0.5 of 12 batches: refreshes after batches 6 and 12 of each epoch; the last one runs
    after the final optimizer step, so the table must equal the final model's eval-mode loss of every sample."""
    dm = TinyDM(batch_size=4, num_workers=0, seed=1,
                sampler=functools.partial(LPBBSampler, mode="refresh", refresh_every=0.5))
    cb = LossFeedback(log_every_n_steps=4)
    model = TinyModel()
    _trainer(tmp_path, callbacks=[cb]).fit(model, datamodule=dm)
    assert cb.refreshes == 4
    ds = DictDataset()
    model.eval()
    with torch.no_grad():
        want = ((model.lin(ds.x).squeeze(-1) - ds.y) ** 2).double().numpy()
    s = dm.train_sampler
    assert s.seen.all()
    np.testing.assert_allclose(s.loss, want, rtol=1e-6)
    # train mode restored after each refresh, the user's eval-mode submodule left in eval mode
    assert len(model.modes_seen) == 24 and set(model.modes_seen) == {(True, False)}


def test_online_mode_logs_stats_and_keeps_unseen_samples_in_play(tmp_path):
    dm = TinyDM(batch_size=4, num_workers=0, seed=1, sampler=LPBBSampler)
    trainer = _trainer(tmp_path, max_epochs=1, callbacks=[LossFeedback(log_every_n_steps=2)])
    trainer.fit(TinyModel(), datamodule=dm)
    s = dm.train_sampler
    assert s.seen.sum() > len(s) // 2  # "mean" initial loss: unseen samples keep an average share
    for k in ("lpbb/ess", "lpbb/max_median_ratio", "lpbb/seen_fraction"):
        assert k in trainer.logged_metrics
    assert 0 < float(trainer.logged_metrics["lpbb/ess"]) <= 1


def _fit_steps(tmp_path, max_steps, ckpt_path=None, every=None):
    # one worker: the DataLoader pulls indices two batches ahead of training (Lightning itself does not
    # prefetch loaders with a length), so the checkpoint holds draws that were not trained yet
    dm = TinyDM(batch_size=4, num_workers=1, persistent_workers=False, seed=3,
                sampler=functools.partial(LPBBSampler, initial_loss="max"))
    model = TinyModel()
    cbs: list = [LossFeedback(log_every_n_steps=0)]
    if every:
        cbs.append(L.pytorch.callbacks.ModelCheckpoint(dirpath=str(tmp_path), every_n_train_steps=every,
                                                       save_top_k=-1, filename="{step}"))
    tr = _trainer(tmp_path, max_steps=max_steps, max_epochs=-1, callbacks=cbs, enable_checkpointing=bool(every))
    tr.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return dm.train_sampler, model


def test_mid_epoch_resume_equals_uninterrupted_run(tmp_path):
    """12 batches per epoch; stop after 17 steps (mid epoch 2) and resume to 30: same table and weights."""
    full_s, full_m = _fit_steps(tmp_path / "full", 30)
    _fit_steps(tmp_path / "a", 17, every=17)
    ckpt = tmp_path / "a" / "step=17.ckpt"
    state = torch.load(ckpt, weights_only=False)["TinyDM"]["train_sampler"]
    assert (state["epoch"], state["step"], sorted(state["pending"])) == (1, 5, [5, 6])
    res_s, res_m = _fit_steps(tmp_path / "b", 30, ckpt_path=str(ckpt))
    np.testing.assert_array_equal(res_s.seen, full_s.seen)
    np.testing.assert_allclose(res_s.loss, full_s.loss, rtol=1e-6)
    assert res_s.epoch == full_s.epoch
    torch.testing.assert_close(res_m.lin.weight, full_m.lin.weight)
    # stopping again inside the resumed epoch: the progress continues from the checkpoint (step 8 = 20 - 12)
    short_s, _ = _fit_steps(tmp_path / "c", 20, ckpt_path=str(ckpt))
    assert (short_s.epoch, short_s.state_dict()["step"]) == (1, 8)


# ---- Lightning, two processes --------------------------------------------------------------------------
@pytest.mark.slow  # 10-26 s on the shared 2-core machine; the fast gloo test is tests/datamodules/test_sampler_ddp.py
@pytest.mark.distributed
def test_lightning_ddp_fit_keeps_loss_tables_identical(tmp_path):
    """strategy=ddp_spawn, 2 CPU processes (gloo), BB refresh mode: both ranks end with the same table."""
    dm = TinyDM(batch_size=4, num_workers=0, seed=1,
                sampler=functools.partial(LPBBSampler, mode="refresh", refresh_every=0.5))
    trainer = _trainer(tmp_path, devices=2, strategy="ddp_spawn",
                       callbacks=[LossFeedback(log_every_n_steps=2), DumpSampler(str(tmp_path))])
    trainer.fit(TinyModel(), datamodule=dm)
    r = [torch.load(tmp_path / f"fit_rank{k}.pt") for k in range(2)]
    assert r[0]["world"] == r[1]["world"] == 2
    assert bool(r[0]["seen"].all())  # the refresh covered every sample (both ranks' shards)
    torch.testing.assert_close(r[0]["loss"], r[1]["loss"], rtol=0, atol=0)


def test_nan_loss_stops_with_step_and_indices():
    s = LPBBSampler(range(10), batch_size=2)
    trainer, module = _fake(s)
    trainer.global_step, trainer.current_epoch = 41, 3
    out = {"loss": torch.tensor(1.0), "per_sample_loss": torch.tensor([1.0, float("nan")]),
           "index": torch.tensor([2, 5])}
    with pytest.raises(ValueError, match=r"global step 41 \(batch 7 of epoch 3\).*indices \[5\]"):
        LossFeedback(log_every_n_steps=0).on_train_batch_end(trainer, module, out, None, 7)
