"""model=identity_gan under DDP: 2 gloo CPU processes (manual optimisation, five optimisers, sub-networks unused by
some backward passes) train, validate and checkpoint through train.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import shared_path

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1",
       "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.distributed
def test_identity_gan_trains_under_ddp(tmp_path):
    from models.test_identity_gan import recognition_ckpt

    root = shared_path("johns")
    ck = recognition_ckpt(tmp_path / "facenet.ckpt", image_size=32)
    run = tmp_path / "run"
    args = [f"paths.output_dir={run}", f"hydra.run.dir={run}", "model=identity_gan", f"model.identity_ckpt={ck}",
            "model.image_size=32", "model.width=8", "model.max_width=32", "model.grid_size=2", "data=johns",
            f"data.root={root}", "data.image_size=32", "data.batch_size=4", "data.num_workers=0", "trainer=ddp",
            "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
            "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "logger=csv", "test=false"]
    res = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=ENV, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["identity_gan"]["attribute_steps"] == 6  # 2 epochs x 3 batches on this rank
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
