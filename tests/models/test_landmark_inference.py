"""Inference API round trip: a checkpoint written by train.py -> LandmarkPredictor -> landmarks in the
original image's pixels, crops made exactly like the training crops."""
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from zoo.datamodules.crop import transform_points
from zoo.io.images import read_image
from zoo.io.pts import read_pts
from zoo.models.inference import LandmarkPredictor
from zoo.run import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import shared_path

    src = shared_path("afw_68")
    root = tmp_path_factory.mktemp("inference")
    faces = root / "faces"
    faces.mkdir()
    for pts in sorted(src.glob("*.pts"))[:20]:
        for f in (pts, pts.with_suffix(".jpg")):
            (faces / f.name).symlink_to(f)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=afw_helen", f"data.data_dir={root}", "data.root=[faces]", "data.image_size=64", "data.batch_size=4",
            "data.num_workers=0", "data.val_fraction=0.2", "data.test_fraction=0.2", "logger=csv",
            f"paths.output_dir={root / 'out'}", "trainer.max_steps=3", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "test=false"])
    res = train(cfg)
    return res, Path(res["trainer"].checkpoint_callback.last_model_path)


def test_predict_matches_model_on_training_crops(run):
    res, ckpt = run
    pred = LandmarkPredictor.from_checkpoint(ckpt)
    assert pred.image_size == 64 and pred.channels == 1 and pred.crop_scale == 1.25
    ds = res["datamodule"].datasets["test"]
    rec = ds.records[0]
    img = read_image(rec.image, grayscale=True)
    gt = read_pts(Path(rec.image).with_suffix(".pts"), 68)
    assert np.allclose(gt, rec.landmarks, atol=1e-4)
    gt = rec.landmarks
    box = [*gt.min(0), *gt.max(0)]  # the training box of 300-W folders: the landmark bounding box
    out = pred.predict([img], boxes=[box])
    assert out.landmarks.shape == (1, 68, 2) and out.validation.shape == (1, 68)
    # the predictor's crop is the dataset's test crop (same geometry and pixel scaling)
    x, mats = pred.crops([img], boxes=[box])
    sample = ds[0]
    assert torch.allclose(x[0], sample["image"], atol=1e-6)
    assert np.allclose(transform_points(mats[0], gt), sample["landmarks"].numpy(), atol=1e-3)
    # the model on that crop gives the crop landmarks; mapped back they land in original-image pixels
    model = pred.model
    with torch.no_grad():
        ref = model(sample["image"][None])
    assert np.allclose(out.crop_landmarks[0], ref["landmarks"][0].numpy(), atol=1e-4)
    assert np.allclose(transform_points(mats[0], out.landmarks[0]), out.crop_landmarks[0], atol=1e-3)
    # validation signal scaled from crop pixels to image pixels (crop = 1.25 x landmark box of side s)
    side = 1.25 * max(box[2] - box[0], box[3] - box[1])
    assert np.allclose(out.validation[0], ref["validation"][0].numpy() * side / 64, rtol=1e-4, atol=1e-4)


def test_predict_without_boxes_and_input_forms(run):
    _, ckpt = run
    pred = LandmarkPredictor.from_checkpoint(ckpt)
    rgb = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    a = pred.predict([rgb]).landmarks
    b = pred.predict(torch.from_numpy(rgb).permute(2, 0, 1)[None]).landmarks  # [N, C, H, W] tensor
    assert a.shape == (1, 68, 2) and np.allclose(a, b, atol=1e-4)
    # no box: the whole 80-px image is the crop: x_img = (x_crop - 31.5) * 80 / 64 + 39.5 (pixel centres)
    crop = pred.predict([rgb]).crop_landmarks
    assert np.allclose((crop - 31.5) * 80 / 64 + 39.5, a, atol=1e-3)
    with pytest.raises(ValueError, match="boxes"):
        pred.predict([rgb, rgb], boxes=[[0, 0, 10, 10]])
