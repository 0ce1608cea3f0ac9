"""evaluate.py: checkpoint -> trainer.test on the run's saved data config -> metrics.json + PNG plots."""
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from zoo.run import evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from conftest import train_on_afw_faces

    res = train_on_afw_faces(tmp_path_factory.mktemp("evaluate"), image_size=64)
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
