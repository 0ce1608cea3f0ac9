"""Issue 12 item 1: a recognition model config brings its data (embedded synthetic identities) and the P×K sampler;
``data=`` / ``sampler=`` on the command line win; a mismatched explicit pair keeps a clear error; the landmark
default stays as it was."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO

CONFIGS = REPO / "configs"
RECOGNITION = ("arcface", "cosface", "facenet_triplet")
#: tiny sizes of the synthetic identities for a fast end-to-end run (P×K = 2×4)
TINY = ["data.num_identities=6", "data.images_per_identity=4", "data.val_identities=4",
        "data.val_images_per_identity=3", "data.test_identities=4", "data.test_images_per_identity=3",
        "data.image_size=32", "data.num_pairs=20", "data.pair_folds=2", "model.val_folds=2", "data.batch_size=8",
        "sampler.k=4", "data.num_workers=0", "trainer.max_epochs=1", "logger=csv",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def compose_train(overrides: list[str], choices: bool = True):
    """The composed train config (with the hydra node, for its group choices, unless ``choices=False``)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=choices)


def file_values(group: str, option: str) -> dict:
    """The option file's own values merged over its defaults' files (read with OmegaConf, not Hydra)."""
    node = OmegaConf.load(CONFIGS / group / f"{option}.yaml")
    merged = OmegaConf.create()
    for d in node.get("defaults", []):
        if isinstance(d, str) and d != "_self_":
            merged = OmegaConf.merge(merged, file_values(group, d))
    node.pop("defaults", None)
    return OmegaConf.to_container(OmegaConf.merge(merged, node), resolve=False)


@pytest.mark.parametrize("model", RECOGNITION)
def test_model_config_selects_synthetic_identities_and_pk(model, tmp_path):
    cfg = compose_train([f"model={model}", f"paths.output_dir={tmp_path}"])
    choices = cfg.hydra.runtime.choices
    assert (choices["data"], choices["sampler"]) == ("synthetic_3dmm_identities", "pk")
    data = OmegaConf.to_container(cfg.data, resolve=False)
    want = file_values("data", "synthetic_3dmm_identities")
    for key, value in want.items():
        assert data[key] == value, key
    assert data["task"] == "identities"
    assert cfg.sampler._target_ == "zoo.datamodules.samplers.pk.PKSampler"
    # the P×K batch fits the embedded data: k images of one identity exist, batch_size = p·k
    assert cfg.data.images_per_identity >= cfg.sampler.k and cfg.data.batch_size % cfg.sampler.k == 0


@pytest.mark.parametrize("model", RECOGNITION)
def test_command_line_data_and_sampler_win(model, tmp_path):
    cfg = compose_train([f"model={model}", "data=johns", "sampler=uniform", f"paths.output_dir={tmp_path}"])
    assert (cfg.hydra.runtime.choices["data"], cfg.hydra.runtime.choices["sampler"]) == ("johns", "uniform")
    assert cfg.data.root.endswith("/johns")
    assert cfg.sampler._target_.endswith("UniformSampler")


def test_landmark_defaults_unchanged(tmp_path):
    cfg = compose_train(["model=landmark_validation", "sampler=lpbb", f"paths.output_dir={tmp_path}"])
    assert cfg.hydra.runtime.choices["data"] == "synthetic_3dmm" and cfg.data.task == "landmarks"
    assert cfg.sampler._target_.endswith("LPBBSampler") or "lpbb" in cfg.sampler._target_.lower()
    plain = compose_train([f"paths.output_dir={tmp_path}"])
    assert (plain.hydra.runtime.choices["data"], plain.hydra.runtime.choices["sampler"],
            plain.hydra.runtime.choices["model"]) == ("synthetic_3dmm", "uniform", "landmark_validation")


def test_explicit_landmark_data_with_recognition_model_is_a_clear_error(tmp_path):
    from zoo.run import train

    cfg = compose_train(["model=arcface", "data=synthetic_3dmm", f"paths.output_dir={tmp_path}"] + TINY[-5:],
                        choices=False)
    with pytest.raises(ValueError, match=r"ArcFaceModel is a 'identities' model but the datamodule yields "
                                         r"'landmarks'.*model=arcface"):
        train(cfg)


@pytest.mark.parametrize("model", RECOGNITION)
def test_model_alone_trains_validates_and_tests(model, tmp_path):
    """``python train.py model=<recognition model>`` wiring, at tiny sizes: fit, validation metrics, test."""
    from zoo.run import train

    extra = [] if model == "facenet_triplet" else ["model.backbone=resnet10t"]
    cfg = compose_train([f"model={model}", f"paths.output_dir={tmp_path}"] + TINY + extra, choices=False)
    res = train(cfg)
    dm = res["datamodule"]
    assert type(dm).__name__ == "Synthetic3DMMDataModule" and dm.info.task == "identities"
    assert type(dm.train_sampler).__name__ == "PKSampler" and (dm.train_sampler.p, dm.train_sampler.k) == (2, 4)
    assert res["trainer"].global_step == len(dm.train_sampler) == 3  # 24 images // (2·4)
    ckpt = res["trainer"].checkpoint_callback  # validated: the best checkpoint was chosen by val/eer
    assert ckpt.monitor == "val/eer" and ckpt.best_model_score is not None and res["best_model_path"]
    assert res["test_metrics"]["test/num_pairs"] == 20
