"""Bad-input suite, entry points (issue 13): export.py/evaluate.py/train.py arguments, runs that would train
nothing, verification folds that cannot be formed, and entry points that must not write into the repository
(export.log, the tracked docs/img/synthetic_grid.png). Each error names the key the user typed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from bad_input.naming import raises_naming
from zoo.datamodules.base import FaceDataModule
from zoo.datamodules.samples import DataInfo
from zoo.models.landmark import LandmarkRegressor
from zoo.models.recognition import FaceNetTriplet

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}


# ---- export.py --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def facenet_ckpt(tmp_path_factory):
    from zoo import checkpoint

    m = FaceNetTriplet(backbone="nn4small", channels=3, image_size=64)
    p = tmp_path_factory.mktemp("ck") / "facenet.ckpt"
    ck = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams)}
    checkpoint.record(ck, {}, type(m))
    torch.save(ck, p)
    return p


def test_export_out_below_a_regular_file(facenet_ckpt, tmp_path):
    from zoo.export import export_checkpoint

    f = tmp_path / "file"
    f.write_text("x")
    raises_naming(lambda: export_checkpoint(facenet_ckpt, "torchscript", f / "x.pt"), f"out={f / 'x.pt'}",
                  f"{f} is a file, not a folder")


def test_export_out_is_a_folder(facenet_ckpt, tmp_path):
    from zoo.export import export_checkpoint

    raises_naming(lambda: export_checkpoint(facenet_ckpt, "onnx", tmp_path), f"out={tmp_path}", "is a folder",
                  "expected a file path")


def test_export_unknown_format(facenet_ckpt, tmp_path):
    from zoo.export import export_checkpoint

    raises_naming(lambda: export_checkpoint(facenet_ckpt, "tflite", tmp_path / "x"), "format must be one of",
                  "'tflite'")


def test_export_py_writes_no_log_file_into_the_launch_folder(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "export.py"), f"ckpt_path={tmp_path / 'missing.ckpt'}"],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and str(tmp_path / "missing.ckpt") in r.stderr + r.stdout
    assert not list(tmp_path.glob("*.log")), sorted(p.name for p in tmp_path.iterdir())


# ---- evaluate / train ---------------------------------------------------------------------------------------------
def test_evaluate_without_ckpt_path():
    from zoo.run import evaluate

    raises_naming(lambda: evaluate(OmegaConf.create({"ckpt_path": None})), "ckpt_path=")


def test_zoo_run_train_refuses_a_priming_config(tmp_path):
    from zoo.run import train

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}", "experiment=kortylewski_priming"])
    raises_naming(lambda: train(cfg), "config key finetune", "zoo.workflows.priming.run")


# ---- runs that would train nothing ----------------------------------------------------------------------------------
class Faces(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": torch.rand(1, 32, 32), "landmarks": torch.rand(5, 2) * 31,
                "visible": torch.ones(5, dtype=torch.bool), "norm": torch.tensor(10.0), "index": torch.tensor(i)}


class FewFaces(FaceDataModule):
    def build_datasets(self):
        return {"train": Faces(5), "val": None, "test": None}

    def data_info(self):
        return DataInfo(task="landmarks", num_landmarks=5, image_size=32, channels=1)


def test_batch_larger_than_training_split_fails_before_training():
    model = LandmarkRegressor(num_landmarks=5, image_size=32, channels=1, head_hidden=8, channels_last=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    raises_naming(lambda: trainer.fit(model, datamodule=FewFaces(batch_size=8, num_workers=0)),
                  "data.batch_size=8", "5 samples", "0 training steps", "expected data.batch_size <= 5")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing trained


def test_batch_check_for_a_plain_lightning_datamodule():
    """Datamodules that are not zoo's (no check of their own) get the model's check on the built loader."""
    class Plain(L.LightningDataModule):
        def train_dataloader(self):
            return torch.utils.data.DataLoader(Faces(5), batch_size=8, drop_last=True)

    model = LandmarkRegressor(num_landmarks=5, image_size=32, channels=1, head_hidden=8, channels_last=False)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    dm = Plain()
    dm.batch_size = 8
    raises_naming(lambda: trainer.fit(model, datamodule=dm), "data.batch_size=8", "0 batches",
                  "expected data.batch_size <= the training-set size")


# ---- verification folds -------------------------------------------------------------------------------------------
class FewPairs(L.LightningDataModule):
    """A datamodule whose validation split has 3 pairs (like a 3-pair LFW file)."""

    datasets = {"val": object()}

    def pairs(self, split="val"):
        return [(0, 1, True), (2, 3, False), (4, 5, True)]


def test_val_folds_checked_before_training():
    model = FaceNetTriplet(backbone="nn4small", channels=3, image_size=64, val_folds=10)
    model.trainer = L.Trainer(logger=False, accelerator="cpu")
    model.trainer.strategy.connect(model)
    model.trainer.datamodule = FewPairs()
    raises_naming(model.check_data, "model.val_folds=10", "cannot be split into 10 folds", "lower model.val_folds")


# ---- generate.py ----------------------------------------------------------------------------------------------------
def test_generate_default_grid_goes_to_the_run_folder(tmp_path):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("generate", return_hydra_config=True, overrides=[f"hydra.run.dir={tmp_path}"])
    grid = OmegaConf.select(cfg, "grid", throw_on_resolution_failure=False)
    raw = OmegaConf.to_container(cfg, resolve=False)["grid"]
    assert "docs/img" not in str(raw) and "hydra:runtime.output_dir" in str(raw)
    assert grid is None or "docs/img" not in str(grid)
