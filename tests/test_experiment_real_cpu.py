"""experiment=real_cpu (issue 11 item 1) wiring: the recipe as committed, with tiny overrides (a few real faces,
two short epochs), trains, validates and tests through train.py's code path."""
from __future__ import annotations

import csv

import pytest
from hydra import compose, initialize_config_dir

from test_train import CONFIGS, link_faces
from zoo.run import train


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from conftest import shared_path

    return link_faces(shared_path("afw_68"), tmp_path_factory.mktemp("data") / "faces", 40)


def compose_recipe(out, faces, *extra):
    overrides = ["experiment=real_cpu", "data=afw_helen", f"data.data_dir={faces.parent}", f"data.root=[{faces.name}]",
                 "data.image_size=48", "data.batch_size=8", "data.num_workers=0", "data.val_fraction=0.2",
                 "data.test_fraction=0.2", f"paths.output_dir={out}", "trainer.max_epochs=2",
                 "trainer.limit_train_batches=3", "trainer.check_val_every_n_epoch=1", *extra]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_recipe_trains_validates_and_tests(tmp_path, faces):
    cfg = compose_recipe(tmp_path, faces)
    assert cfg.trainer.max_time == "00:00:30:00" and cfg.run_name == "real_cpu"
    res = train(cfg)
    model, trainer = res["model"], res["trainer"]
    assert trainer.state.finished and trainer.current_epoch == 2  # the epoch budget ended first here
    assert model.hparams.test_time_flip and model.validation_net is not None
    assert model.hparams.validation_target == "log_distance" and model.hparams.coord_space == "normalized"
    assert not trainer.lr_scheduler_configs  # the lr follows callbacks.wall_clock_lr
    m = res["test_metrics"]
    assert 0 < m["test/nme"] < 1 and "test/spearman" in m and "test/nme_discard30_val" in m
    # the lr of the last step: base lr 2e-3 x the factor at its progress (epoch 1, last of nb batches) / 2 epochs
    from zoo.callbacks.wall_clock_lr import wall_clock_factor

    nb = trainer.num_training_batches
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(2e-3 * wall_clock_factor((1 + (nb - 1) / nb) / 2, 0.03, 0.01))
    rows = list(csv.DictReader(open(next((tmp_path / "csv").glob("version_*/metrics.csv")))))
    curve = [(float(r["time/train_min"]), float(r["val/nme"])) for r in rows if r.get("val/nme")]
    assert len(curve) == 2 and curve[0][0] < curve[1][0]  # the learning curve: val NME vs training minutes


def test_one_override_stretches_the_budget(tmp_path, faces):
    cfg = compose_recipe(tmp_path, faces, "trainer.max_time=00:02:00:00", "trainer.accelerator=cpu")
    assert cfg.trainer.max_time == "00:02:00:00"
    assert cfg.callbacks.wall_clock_lr.warmup == 0.03  # the schedule is relative to the budget, nothing else changes
