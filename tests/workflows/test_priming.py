"""Priming workflow: pretrain on one identity datamodule, fine-tune on another from the pretrained weights."""
from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from conftest import REPO, shared_path


def priming_cfg(tmp_path, *extra: str):
    johns, ytf = shared_path("johns"), shared_path("ytf_keypoints")
    overrides = [
        "experiment=kortylewski_priming", "data=johns", f"data.root={johns}", "data.num_workers=0",
        "data@finetune.data=ytf_identities", f"finetune.data.root={ytf}/training",
        f"finetune.data.keypoints_file={ytf}/training_frames_keypoints.csv", "finetune.data.num_workers=0",
        "finetune.data.image_size=64", "data.image_size=64", "data.batch_size=12",
        "logger=csv", f"paths.output_dir={tmp_path}", "test=false",
        "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "finetune.trainer.max_epochs=1", *extra]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_arcface_priming_keeps_embedder_and_reinitialises_centres(tmp_path):
    from zoo.workflows.priming import run as train

    cfg = priming_cfg(tmp_path, "model=arcface", "model.backbone=resnet10t", "finetune.fraction=0.1",
                      "+finetune.model.optimizer.lr=1.0e-12")  # fine-tuning step leaves the weights ~unchanged
    res = train(cfg)
    pre, fin = res["pretrain"]["model"], res["model"]
    assert str(tmp_path / "pretrain") in res["pretrained_checkpoint"]
    n_pre = res["pretrain"]["datamodule"].info.num_identities
    n_fin = res["datamodule"].info.num_identities
    assert (n_pre, n_fin) == (3, 277)  # johns: 3 training identities; YTF: 277 (fraction keeps identities)
    assert fin.loss.weight.shape == (n_fin, 512) and pre.loss.weight.shape == (n_pre, 512)
    assert res["datamodule"].train_fraction == 0.1
    assert res["datamodule"].info.sizes["train"] < 0.2 * 2800
    a, b = _params(pre.embedder), _params(fin.embedder)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0)


def test_finetune_from_checkpoint_without_reinit_names_both_counts(tmp_path):
    from zoo.models.recognition import ArcFaceModel
    from zoo.workflows.priming import run as train

    src = ArcFaceModel(backbone="resnet10t", channels=3, image_size=64, num_identities=3)
    ckpt = tmp_path / "pre.ckpt"
    torch.save({"state_dict": src.state_dict()}, ckpt)
    cfg = priming_cfg(tmp_path, "model=arcface", "model.backbone=resnet10t", f"finetune.init_from={ckpt}",
                      "finetune.reinit_centres=false")
    with pytest.raises(ValueError, match=r"\(3, 512\).*277 identities.*reinit_centres=true"):
        train(cfg)


def test_synthetic_to_real_priming_with_the_experiment_defaults(tmp_path):
    """experiment=kortylewski_priming as committed: FaceNet primed on 3DMM-synthetic identities (tiny here),
    fine-tuned on 25 % of the YTF training images."""
    from zoo.workflows.priming import run as train

    ytf = shared_path("ytf_keypoints")
    overrides = [
        "experiment=kortylewski_priming", "data.num_identities=12", "data.images_per_identity=6",
        "data.val_identities=4", "data.val_images_per_identity=3", "data.test_identities=4",
        "data.test_images_per_identity=3", "data.batch_size=30", "data.num_workers=0", "data.num_pairs=24",
        "data.image_size=64", f"finetune.data.root={ytf}/training",
        f"finetune.data.keypoints_file={ytf}/training_frames_keypoints.csv", "finetune.data.num_workers=0",
        "finetune.data.image_size=64", "finetune.fraction=0.25", "logger=csv", f"paths.output_dir={tmp_path}",
        "test=false", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "finetune.trainer.max_epochs=1",
        "+finetune.trainer.limit_train_batches=1", "+finetune.trainer.limit_val_batches=1",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert cfg.data._target_ == "zoo.datamodules.synthetic.Synthetic3DMMDataModule"
    res = train(cfg)
    assert res["pretrain"]["datamodule"].info.num_identities == 12
    assert res["datamodule"].train_fraction == 0.25 and res["trainer"].state.finished
    assert (tmp_path / "finetune" / "checkpoints" / "config.yaml").is_file()
    assert str(tmp_path / "pretrain") in res["pretrained_checkpoint"]
    # the fine-tuning stage started from the synthetic checkpoint's weights: rebuild the fine-tuning model,
    # run only its init hook, and compare every embedder tensor with the pretrained checkpoint's own tensors
    pre = torch.load(res["pretrained_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    fresh = type(res["model"])(**{**res["model"].hparams, "init_from": res["pretrained_checkpoint"]})
    info = fresh.load_pretrained(res["pretrained_checkpoint"])
    emb = {k: v for k, v in fresh.state_dict().items() if k.startswith("embedder.")}
    assert emb and sorted(info["loaded"]) == sorted(emb)
    for k, v in emb.items():
        torch.testing.assert_close(v, pre[k], rtol=0, atol=0, msg=k)
    # and the pretraining really changed the weights (so equality above is not the common random init)
    torch.manual_seed(12345)
    other = type(res["model"])(**{**res["model"].hparams, "init_from": None})
    assert any(not torch.equal(other.state_dict()[k], pre[k]) for k in emb if pre[k].is_floating_point())


@pytest.mark.parametrize("key,value,match", [
    ("fraction", 0.0, "finetune.fraction"),
    ("fraction", 1.5, "finetune.fraction"),
    ("init", "first", "finetune.init"),
    ("epochs", 3, "unknown keys"),
])
def test_bad_finetune_config(tmp_path, key, value, match):
    from zoo.workflows.priming import run

    cfg = priming_cfg(tmp_path)
    with open_dict(cfg):
        cfg.finetune[key] = value
    with pytest.raises(ValueError, match=match):
        run(cfg)


def test_landmark_priming_loads_the_synthetic_weights(tmp_path):
    """experiment=kortylewski_landmarks (issue 11 item 4): the landmark model pretrained on 3DMM-synthetic faces
    (tiny here) is the starting point of the fine-tuning on a fraction of afw_helen: every tensor of the
    fine-tuning model's init equals the pretrained checkpoint's, which differs from a fresh initialisation."""
    from zoo.models.landmark import LandmarkRegressor
    from zoo.workflows.priming import run

    data = shared_path("afw_68").parent
    overrides = [
        "experiment=kortylewski_landmarks", "data.num_identities=6", "data.images_per_identity=2",
        "data.val_identities=2", "data.test_identities=2", "data.batch_size=6",
        "data.num_workers=0", f"finetune.data.data_dir={data}", "finetune.data.root=[afw_68]",
        "finetune.data.batch_size=8", "finetune.data.num_workers=0", "finetune.fraction=0.25",
        "logger=csv", f"paths.output_dir={tmp_path}", "test=false", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "+finetune.trainer.max_epochs=1",
        "+finetune.trainer.limit_train_batches=1", "+finetune.trainer.limit_val_batches=1"]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert cfg.data._target_ == "zoo.datamodules.synthetic.Synthetic3DMMDataModule" and cfg.data.yaw == [-35, 35]
    assert cfg.finetune.data.image_size == cfg.data.image_size == 96  # same input size in both stages
    res = run(cfg)
    assert res["datamodule"].train_fraction == 0.25 and res["trainer"].state.finished
    assert res["pretrain"]["datamodule"].info.task == "landmarks"
    pre = torch.load(res["pretrained_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    hp = dict(res["model"].hparams)
    fresh = LandmarkRegressor(**hp, init_from=res["pretrained_checkpoint"])
    loaded = fresh.load_pretrained(res["pretrained_checkpoint"])
    own = fresh.state_dict()
    assert sorted(loaded) == sorted(own) and any(k.startswith("validation_net.") for k in own)
    for k, v in own.items():
        torch.testing.assert_close(v, pre[k], rtol=0, atol=0, msg=k)
    torch.manual_seed(12345)
    other = LandmarkRegressor(**hp).state_dict()
    assert any(not torch.equal(other[k], pre[k]) for k in own if k.startswith("backbone.") and pre[k].is_floating_point())
    assert not torch.equal(other["anchor"], pre["anchor"])  # the synthetic mean shape came along too
    # and the fine-tuned model started there: one step at a negligible learning rate leaves the weights in place
    ft = res["model"].state_dict()
    for k in own:
        if k.startswith("backbone.") and k.endswith("weight"):
            torch.testing.assert_close(ft[k], pre[k], rtol=0, atol=1e-4, msg=k)


def test_landmark_init_from_of_another_task_names_the_key(tmp_path):
    from zoo.models.landmark import LandmarkRegressor
    from zoo.models.recognition import ArcFaceModel

    ckpt = tmp_path / "arcface.ckpt"
    torch.save({"state_dict": ArcFaceModel(backbone="resnet10t", channels=1, image_size=64,
                                           num_identities=3).state_dict()}, ckpt)
    model = LandmarkRegressor(num_landmarks=68, image_size=64, channels=1, init_from=str(ckpt))
    with pytest.raises(ValueError, match="model.init_from.*no 'backbone"):
        model.load_pretrained(ckpt)
