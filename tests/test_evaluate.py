"""evaluate.py: checkpoint -> trainer.test on the run's saved data config -> metrics.json + PNG plots."""
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from zoo.run import evaluate, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from conftest import shared_path

    src = shared_path("afw_68")
    root = tmp_path_factory.mktemp("evaluate")
    (root / "faces").mkdir()
    for pts in sorted(src.glob("*.pts"))[:24]:
        for f in (pts, pts.with_suffix(".jpg")):
            (root / "faces" / f.name).symlink_to(f)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=afw_helen", f"data.data_dir={root}", "data.root=[faces]", "data.image_size=64", "data.batch_size=4",
            "data.num_workers=0", "data.val_fraction=0.25", "data.test_fraction=0.25", "logger=csv",
            f"paths.output_dir={root / 'run'}", "trainer.max_steps=3", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "test=false"])
    res = train(cfg)
    return Path(res["best_model_path"])


@pytest.mark.parametrize("logger", ["csv", "wandb"])
def test_evaluate_writes_json_and_pngs(tmp_path, checkpoint, logger):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={checkpoint}", f"out_dir={tmp_path / 'eval'}",
                                             f"paths.output_dir={tmp_path}", f"logger={logger}",
                                             "trainer.enable_progress_bar=false"])
    res = evaluate(cfg)
    out = tmp_path / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("nme", "fr@0.08", "auc@0.08", "nme_discard10_val", "nme_discard10_random", "spearman", "pearson"):
        assert key in metrics, key
    for png in ("ced.png", "validation.png", "samples.png"):
        assert (out / png).stat().st_size > 1000, png
    # independent NME on the test split: mean over faces of mean point error / dataset norm
    model, ds = res["model"].eval(), res["datamodule"].datasets["test"]
    errs = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            p = model(s["image"][None])["landmarks"][0]
            errs.append((torch.linalg.norm(p - s["landmarks"], dim=-1).mean() / s["norm"]).item())
    assert metrics["nme"] == pytest.approx(sum(errs) / len(errs), rel=1e-4)
    assert metrics["num_faces"] == len(ds)
    if logger == "wandb":
        assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_evaluate_needs_existing_checkpoint(tmp_path):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={tmp_path / 'missing.ckpt'}", f"paths.output_dir={tmp_path}",
                                             "logger=csv"])
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        evaluate(cfg)
