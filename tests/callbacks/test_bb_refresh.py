"""The BB refresh pass (LPBB ``mode=refresh``) with the real landmark model and data: the loss table equals a
brute-force recomputation of every training sample's loss (one face at a time, model in eval mode, the image
without augmentation), the pass runs at the eval batch size and never starts new workers after the first pass."""
from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.callbacks.loss_feedback import LossFeedback
from zoo.datamodules.landmark_datasets import LandmarkDataset
from zoo.datamodules.landmark_folders import LandmarkDataModule
from zoo.datamodules.samplers.lpbb import LPBBSampler
from zoo.datamodules.transforms import fuhl2019
from zoo.models.landmark import LandmarkRegressor
from zoo.schemes import get_scheme

SIZE, WEIGHT = 32, 0.5


def face_folder(root: Path, n: int = 16) -> Path:
    """n noise images with 68 points spread over the middle of the image (.pts, 1-based)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(root / f"f{i:02d}.png"), rng.integers(0, 255, (80, 80), dtype=np.uint8))
        pts = rng.uniform(20, 60, size=(68, 2)) + 1
        (root / f"f{i:02d}.pts").write_text("version: 1\nn_points: 68\n{\n" +
                                             "\n".join(f"{x:.2f} {y:.2f}" for x, y in pts) + "\n}\n")
    return root


def brute_force_losses(model: LandmarkRegressor, records, lam: float) -> np.ndarray:
    """Every training face alone, un-augmented crop (a fresh dataset), model in eval mode; Eq. 3 with the L2
    stage written out: mean_j 1/2 ||p_j - g_j||^2 + lam * mean_j 1/2 (|p_j - g_j|_1 - v_j)^2."""
    ds = LandmarkDataset(records, get_scheme("ibug68"), image_size=SIZE)
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            o = model(s["image"][None])
            p, v, g = o["landmarks"][0].double(), o["validation"][0].double(), s["landmarks"].double()
            coord = (0.5 * ((p - g) ** 2).sum(-1)).mean()
            val = (0.5 * ((p - g).abs().sum(-1) - v) ** 2).mean()
            out.append(float(coord + lam * val))
    return np.array(out)


def fit(tmp_path, num_workers: int, refresh_view: str = "plain", cache_mb: float = 1024.0, epochs: int = 2):
    dm = LandmarkDataModule(root=str(face_folder(tmp_path / "faces")), image_size=SIZE, val_fraction=0.0,
                            test_fraction=0.0, split_by="sample", augment=fuhl2019(), batch_size=4,
                            eval_batch_size=5, num_workers=num_workers, seed=1,
                            sampler=functools.partial(LPBBSampler, mode="refresh", refresh_every=0.5,
                                                      refresh_view=refresh_view, refresh_cache_mb=cache_mb))
    torch.manual_seed(0)
    model = LandmarkRegressor(num_landmarks=68, image_size=SIZE, channels=1, scheme="ibug68", head_hidden=32,
                              validation_weight=WEIGHT, validation_warmup_steps=0, channels_last=False,
                              loss_schedule=[{"epoch": 0, "loss": "l2"}],
                              optimizer=functools.partial(torch.optim.SGD, lr=1e-3))
    cb = LossFeedback(log_every_n_steps=0)
    L.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, use_distributed_sampler=False, logger=False,
              enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=str(tmp_path),
              callbacks=[cb]).fit(model, datamodule=dm)
    return dm, model, cb


@pytest.fixture
def count_iterators(monkeypatch):
    """How many times each DataLoader built a new iterator (a multi-worker iterator = new worker processes)."""
    made: Counter = Counter()
    orig = DataLoader._get_iterator

    def counted(self):
        made[id(self)] += 1
        return orig(self)

    monkeypatch.setattr(DataLoader, "_get_iterator", counted)
    return made


@pytest.mark.parametrize("num_workers", [0, 1])
def test_refresh_equals_brute_force_losses_of_unaugmented_faces(tmp_path, num_workers, count_iterators):
    # 16 faces, batch 4 -> 4 batches per epoch, refresh every round(0.5 * 4) = 2 batches: after batches 2 and 4;
    # the last one follows the last optimizer step, so the table holds the final model's losses
    dm, model, cb = fit(tmp_path, num_workers, epochs=2)
    assert cb.refreshes == 4
    s = dm.train_sampler
    assert s.seen.all()
    want = brute_force_losses(model, dm.datasets["train"].records, WEIGHT)
    np.testing.assert_allclose(s.loss, want, rtol=1e-4, atol=1e-6)
    rp = dm.refresh_loader()
    assert rp.cached and [len(b["index"]) for b in rp] == [5, 5, 5, 1]  # eval batch size, one pass over the set
    assert count_iterators[id(rp.loader)] == 1  # loaded once, replayed from memory by the second refresh


def test_uncached_refresh_keeps_its_workers(tmp_path, count_iterators):
    dm, model, cb = fit(tmp_path, num_workers=1, cache_mb=0.0, epochs=3)
    rp = dm.refresh_loader()
    assert cb.refreshes == 6 and not rp.cached
    assert rp.loader.persistent_workers and count_iterators[id(rp.loader)] == 1  # one worker start, 6 passes
    np.testing.assert_allclose(dm.train_sampler.loss, brute_force_losses(model, dm.datasets["train"].records, WEIGHT),
                               rtol=1e-4, atol=1e-6)


def test_augmented_view_differs_from_the_plain_losses(tmp_path):
    dm, model, _ = fit(tmp_path, num_workers=0, refresh_view="augmented", epochs=1)
    assert not dm.refresh_loader().cached  # random views are never cached
    want = brute_force_losses(model, dm.datasets["train"].records, WEIGHT)
    assert dm.train_sampler.seen.all() and not np.allclose(dm.train_sampler.loss, want, rtol=1e-2)


def test_refresh_view_is_checked():
    with pytest.raises(ValueError, match="sampler.refresh_view"):
        LPBBSampler(range(4), batch_size=2, mode="refresh", refresh_view="clean")
    with pytest.raises(ValueError, match="sampler.refresh_cache_mb"):
        LPBBSampler(range(4), batch_size=2, mode="refresh", refresh_cache_mb=-1)


@pytest.mark.parametrize("batches,every,want", [
    (15, 0.1, [2, 3, 5, 6, 8, 9, 11, 12, 14, 15]),  # 10 per epoch (round(1.5) = 2 would give 7)
    (100, 0.1, list(range(10, 101, 10))),
    (12, 0.5, [6, 12]),
    (4, 0.1, [1, 2, 3, 4]),  # period < 1 batch: every batch
    (7, 1.0, [7]),
])
def test_refresh_schedule_is_1_over_refresh_every_per_epoch(batches, every, want):
    assert [b for b in range(1, batches + 1) if LossFeedback.refresh_due(b, batches, every)] == want
