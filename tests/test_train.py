"""train.py wiring through Hydra: default config, every experiment, sampler=lpbb, resume, bad input.

Runs :func:`zoo.run.train` on configs composed exactly as ``python train.py ...`` composes them, with tiny
overrides (a folder of symlinks to a few real 300-W faces, 64-px crops, fast_dev_run or a few steps).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from zoo.run import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
HAVE_SYNTH = (CONFIGS / "data" / "synthetic_3dmm.yaml").exists()
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("fuhl_*.yaml"))  # the landmark experiments


def link_faces(src: Path, dst: Path, n: int) -> Path:
    """``dst`` with symlinks to the first ``n`` annotated faces of ``src`` (nothing copied)."""
    dst.mkdir(parents=True, exist_ok=True)
    for pts in sorted(src.glob("*.pts"))[:n]:
        for f in (pts, pts.with_suffix(".jpg"), pts.with_suffix(".png")):
            if f.exists() and not (dst / f.name).exists():
                (dst / f.name).symlink_to(f)
    return dst


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    from conftest import shared_path

    return link_faces(shared_path("afw_68"), tmp_path_factory.mktemp("data") / "faces", 40)


def compose_train(out: Path, faces: Path, *overrides: str, data: str = "afw_helen"):
    tiny = [f"data={data}", f"paths.output_dir={out}", "logger=csv", "data.num_workers=0", "data.batch_size=8",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    if data == "afw_helen":
        tiny += [f"data.data_dir={faces.parent}", f"data.root=[{faces.name}]", "data.image_size=64",
                 "data.val_fraction=0.2", "data.test_fraction=0.2"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=tiny + list(overrides))


def test_default_run_fast_dev_run(tmp_path, faces):
    data = "synthetic_3dmm" if HAVE_SYNTH else "afw_helen"
    cfg = compose_train(tmp_path, faces, "trainer.fast_dev_run=true", "logger=wandb", data=data)
    res = train(cfg)
    assert res["trainer"].state.finished
    assert "test/nme" in res["test_metrics"]
    assert (tmp_path / "wandb_run_id.txt").is_file()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(tmp_path, faces, experiment):
    cfg = compose_train(tmp_path, faces, f"experiment={experiment}", "trainer.fast_dev_run=true")
    assert cfg.run_name == experiment
    res = train(cfg)
    model = res["model"]
    assert model.hparams.validation_head == (experiment != "fuhl_non")
    assert [s["loss"] for s in model.loss_schedule] == ["l2", "l1", "wing"]
    sampler = res["datamodule"].train_sampler
    expected = {"fuhl_non": "UniformSampler", "fuhl_nobb": "UniformSampler", "fuhl_bbo": "LPBBSampler",
                "fuhl_bb": "LPBBSampler"}[experiment]
    assert type(sampler).__name__ == expected
    if experiment in ("fuhl_bbo", "fuhl_bb"):
        assert sampler.mode == ("online" if experiment == "fuhl_bbo" else "refresh")
        assert sampler.seen.sum() > 0  # the loss feedback reached the sampler
    assert "test/nme" in res["test_metrics"]


def test_lpbb_sampler_with_validation_model(tmp_path, faces):
    cfg = compose_train(tmp_path, faces, "model=landmark_validation", "sampler=lpbb", "trainer.max_epochs=1",
                        "trainer.num_sanity_val_steps=0")
    res = train(cfg)
    sampler = res["datamodule"].train_sampler
    assert type(sampler).__name__ == "LPBBSampler"
    assert Path(res["best_model_path"]).is_file()
    ckpt = torch.load(res["best_model_path"], map_location="cpu", weights_only=False)
    assert ckpt["zoo"]["model_class"] == "zoo.models.landmark.LandmarkRegressor"
    assert ckpt["zoo"]["config"]["sampler"]["_target_"].endswith("LPBBSampler")
    assert "train_sampler" in ckpt["LandmarkDataModule"]  # sampler state travels in the checkpoint
    assert (tmp_path / "checkpoints" / "config.yaml").is_file()


def _run_steps(out: Path, faces: Path, *extra: str):
    step_ckpt = ("+callbacks.step_ckpt={_target_: lightning.pytorch.callbacks.ModelCheckpoint, "
                 f"dirpath: '{out}/steps', filename: 'ckpt-{{step}}', auto_insert_metric_name: false, "
                 "every_n_train_steps: 1, save_top_k: -1}")
    cfg = compose_train(out, faces, "sampler=lpbb", "trainer.max_epochs=3", "trainer.num_sanity_val_steps=0",
                        "test=false", "seed=3", step_ckpt, *extra)
    return train(cfg)


def test_resume_equals_uninterrupted_run(tmp_path, faces):
    full = _run_steps(tmp_path / "full", faces)
    steps = full["trainer"].global_step
    per_epoch = steps // 3
    assert per_epoch >= 2
    # stop after per_epoch + 1 steps (mid-epoch 1) and resume from the checkpoint written at that step
    stop = per_epoch + 1
    part = _run_steps(tmp_path / "part", faces, f"trainer.max_steps={stop}")
    assert part["trainer"].global_step == stop
    ckpt = tmp_path / "part" / "steps" / f"ckpt-{stop}.ckpt"
    assert ckpt.is_file()
    resumed = _run_steps(tmp_path / "resumed", faces, f"ckpt_path={ckpt}")
    assert resumed["trainer"].global_step == steps
    a, b = full["datamodule"].train_sampler.state_dict(), resumed["datamodule"].train_sampler.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if hasattr(va, "shape"):
            assert torch.allclose(torch.as_tensor(va).double(), torch.as_tensor(vb).double(), rtol=1e-4, atol=1e-5), k
        else:
            assert str(va) == str(vb), k
    assert full["val_metrics"]["val/nme"] == pytest.approx(resumed["val_metrics"]["val/nme"], rel=1e-4)
    for name, p in full["model"].state_dict().items():
        assert torch.allclose(p.float(), resumed["model"].state_dict()[name].float(), rtol=1e-4, atol=1e-5), name


def test_task_mismatch_fails_early(tmp_path, faces):
    recog = [p.stem for p in (CONFIGS / "model").glob("*.yaml") if "landmark" not in p.stem]
    if not recog:
        pytest.skip("no recognition model config in configs/model yet")
    cfg = compose_train(tmp_path, faces, f"model={recog[0]}")
    with pytest.raises(ValueError, match="'identities' model but the datamodule yields 'landmarks'"):
        train(cfg)


@pytest.mark.parametrize("override,key", [("trainer.max_epochs=0", "trainer.max_epochs"),
                                          ("model.optimizer.lr=-1", "model.optimizer.lr"),
                                          ("trainer.gradient_clip_val=-2", "trainer.gradient_clip_val")])
def test_bad_numbers_name_the_key(tmp_path, faces, override, key):
    cfg = compose_train(tmp_path, faces, override)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        train(cfg)


def test_unknown_choice_lists_valid_ones():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        with pytest.raises(MissingConfigException) as e:
            compose("train", overrides=["model=no_such_model", "paths.output_dir=/tmp/x"])
    assert "landmark_validation" in str(e.value)


def test_resumed_run_continues_the_same_wandb_run(tmp_path, faces):
    first = compose_train(tmp_path / "a", faces, "logger=wandb", "trainer.max_steps=2", "test=false",
                          "trainer.num_sanity_val_steps=0")
    res = train(first)
    run_id = (tmp_path / "a" / "wandb_run_id.txt").read_text()
    last = Path(res["trainer"].checkpoint_callback.last_model_path)
    assert torch.load(last, map_location="cpu", weights_only=False)["zoo"]["wandb_id"] == run_id
    (tmp_path / "a" / "wandb_run_id.txt").unlink()  # the id must come from the checkpoint itself
    second = compose_train(tmp_path / "b", faces, "logger=wandb", "trainer.max_steps=3", "test=false",
                           f"ckpt_path={last}", "trainer.num_sanity_val_steps=0")
    res2 = train(second)
    # resumed in the checkpoint's own run folder (paths.output_dir=b is replaced by a), same W&B run
    assert res2["trainer"].checkpoint_callback.dirpath == str(tmp_path / "a" / "checkpoints")
    assert (tmp_path / "a" / "wandb_run_id.txt").read_text() == run_id
    assert len(list((tmp_path / "a" / "wandb").glob(f"offline-run-*-{run_id}"))) >= 1
    assert not (tmp_path / "b").exists()
