"""evaluate.py on a test set of your own: ``data=pts_folder data.data_dir=<folder>`` (every image + .pts pair, no
split), ``data=keypoint_csv_file`` and ``data=wflw_list`` (every row of one file); geometry from the checkpoint;
bad input (a folder without pairs, a checkpoint of another task, a crop size the model was not trained on)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from zoo.run import evaluate, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SIZE = 32


def write_faces(root: Path, n: int, seed: int, suffix: str = ".png") -> list[Path]:
    """n grey photos (noise + a bright blob) with 68 points (.pts, 1-based); outer eye corners 36/45 apart."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = rng.integers(70, 110, size=2)
        img = rng.integers(0, 80, (h, w), dtype=np.uint8)
        cx, cy, r = w / 2 + rng.uniform(-5, 5), h / 2 + rng.uniform(-5, 5), rng.uniform(18, 26)
        cv2.circle(img, (int(cx), int(cy)), int(r), 200, -1)
        pts = np.stack([cx + rng.uniform(-r, r, 68), cy + rng.uniform(-r, r, 68)], 1)
        pts[36], pts[45] = (cx - 0.7 * r, cy - 0.3 * r), (cx + 0.7 * r, cy - 0.3 * r)
        stem = root / f"face{seed}_{i:02d}"
        cv2.imwrite(str(stem.with_suffix(suffix)), img)
        body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in pts)  # .pts: 1-based
        stem.with_suffix(".pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
        out.append(stem.with_suffix(".pts"))
    return out


def parse_pts(path: Path) -> np.ndarray:
    """The test's own .pts reader: the lines between the braces, 1-based -> 0-based."""
    lines = path.read_text().splitlines()
    body = lines[lines.index("{") + 1: lines.index("}")]
    return np.array([[float(v) for v in ln.split()] for ln in body]) - 1.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("anywhere")
    write_faces(root / "train_faces", 16, seed=1)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=afw_helen", f"data.data_dir={root}", "data.root=[train_faces]", f"data.image_size={SIZE}",
            "data.batch_size=4", "data.num_workers=0", "data.val_fraction=0.25", "data.test_fraction=0.25",
            "data.split_by=sample", "logger=csv", f"paths.output_dir={root / 'run'}", "trainer.max_steps=2",
            "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "test=false"])
    return Path(train(cfg)["best_model_path"])


def run_evaluate(ckpt: Path, out: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={ckpt}", f"out_dir={out / 'eval'}",
                                             f"paths.output_dir={out}", "logger=csv", "data.num_workers=0",
                                             "trainer.enable_progress_bar=false", *overrides])
    return evaluate(cfg)


def hand_nme(model, dataset, pts_files: list[Path]) -> float:
    """Mean over faces of mean_j ||P_j - G_j|| / ||G_36 - G_45|| in the photo's pixels: G read by :func:`parse_pts`,
    P the model's crop prediction mapped back to the photo by the similarity (scale + shift, the crop warp) that
    takes the sample's crop landmarks onto G (least squares; exact for an un-rotated crop)."""
    by_file = {Path(r.image).with_suffix("").resolve(): i for i, r in enumerate(dataset.records)}
    assert sorted(by_file) == sorted(p.with_suffix("").resolve() for p in pts_files)  # every face, nothing else
    errs = []
    model.eval()
    with torch.no_grad():
        for pts in pts_files:
            g = parse_pts(pts)
            s = dataset[by_file[pts.with_suffix('').resolve()]]
            c = s["landmarks"].double().numpy()
            cc, gc = c - c.mean(0), g - g.mean(0)
            k = float((cc * gc).sum() / (cc * cc).sum())  # x_photo = k * x_crop + t (one k for x and y)
            tx, ty = g.mean(0) - k * c.mean(0)
            np.testing.assert_allclose(k * c + [tx, ty], g, atol=1e-3)  # the crop is that similarity
            p = model(s["image"][None])["landmarks"][0].double().numpy() * k + [tx, ty]
            errs.append(np.linalg.norm(p - g, axis=1).mean() / np.linalg.norm(g[36] - g[45]))
    return float(np.mean(errs))


def test_pts_folder_is_one_test_set_with_the_checkpoints_geometry(tmp_path, checkpoint):
    test = tmp_path / "my_test"
    files = write_faces(test, 5, seed=7) + write_faces(test / "more", 3, seed=8, suffix=".jpg")  # recursive
    res = run_evaluate(checkpoint, tmp_path, "data=pts_folder", f"data.data_dir={test}")
    dm, out = res["datamodule"], tmp_path / "eval"
    assert dm.image_size == SIZE and dm.grayscale and dm.norm == "inter_ocular"  # from the checkpoint
    assert dm.info.sizes == {"train": 0, "val": 0, "test": 8}  # no split: every pair is a test face
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_faces"] == 8
    for key in ("fr@0.08", "auc@0.08", "nme_discard30_val", "nme_discard30_random", "spearman"):
        assert key in metrics, key
    for png in ("ced.png", "validation.png", "samples.png"):
        assert (out / png).stat().st_size > 1000, png
    assert metrics["nme"] == pytest.approx(hand_nme(res["model"], dm.datasets["test"], files), rel=1e-4)
    # per-subset metrics carry the test folder's own name, not the training data's
    assert any(k.startswith(f"{test.name}/") or k.endswith(f"/{test.name}") for k in metrics), sorted(metrics)[:20]


def test_keypoint_csv_file_gives_the_same_metrics_as_the_folder(tmp_path, checkpoint):
    test = tmp_path / "faces"
    files = write_faces(test, 4, seed=9)
    rows = ["filename," + ",".join(f"x{i},y{i}" for i in range(68))]
    for p in files:  # the CSV holds 0-based pixels, image paths relative to the CSV's folder
        rows.append(p.with_suffix(".png").name + "," + ",".join(f"{v:.4f}" for v in parse_pts(p).reshape(-1)))
    (test / "keypoints.csv").write_text("\n".join(rows) + "\n")
    folder = run_evaluate(checkpoint, tmp_path / "a", "data=pts_folder", f"data.data_dir={test}")
    csv = run_evaluate(checkpoint, tmp_path / "b", "data=keypoint_csv_file", f"data.annotations={test / 'keypoints.csv'}")
    assert csv["datamodule"].info.sizes["test"] == 4
    assert csv["report"]["nme"] == pytest.approx(folder["report"]["nme"], rel=1e-5)
    assert csv["report"]["nme"] == pytest.approx(hand_nme(csv["model"], csv["datamodule"].datasets["test"], files),
                                                 rel=1e-4)


def test_wflw_list_is_one_test_set(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    lines = []
    for i in range(3):
        cv2.imwrite(str(tmp_path / "imgs" / f"w{i}.jpg"), rng.integers(0, 255, (90, 90), dtype=np.uint8))
        pts = rng.uniform(25, 65, size=(98, 2))
        lines.append(" ".join(f"{v:.2f}" for v in pts.reshape(-1)) + " 20 20 70 70 1 0 0 0 1 0 " + f"w{i}.jpg")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("evaluate", overrides=["data=wflw_list", f"data.annotations={tmp_path / 'list.txt'}",
                                             f"data.image_root={tmp_path / 'imgs'}", "data.image_size=48",
                                             "data.num_workers=0", "ckpt_path=x", f"paths.output_dir={tmp_path}"])
    dm = instantiate(cfg.data)
    dm.setup("test")
    assert dm.info.sizes == {"train": 0, "val": 0, "test": 3} and dm.info.num_landmarks == 98
    assert dm.attribute_names and dm.datasets["test"][0]["subset"].tolist() == [1, 0, 0, 0, 1, 0]


def test_checkpoint_geometry_fills_only_null_keys_and_keeps_interpolations(tmp_path):
    from zoo.run import data_for_checkpoint

    saved = {"image_size": 40, "crop_scale": 1.4, "grayscale": True, "mean": 0.5, "std": 0.25, "norm": "inter_pupil"}
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        folder = compose("evaluate", overrides=["data=pts_folder", f"data.data_dir={tmp_path}", "data.image_size=48",
                                                "ckpt_path=x", f"paths.output_dir={tmp_path}"])
        split = compose("evaluate", overrides=["data=afw_helen", "ckpt_path=x", f"paths.output_dir={tmp_path}"])
    dm = instantiate(data_for_checkpoint(folder.data, saved))
    assert (dm.image_size, dm.crop_scale, dm.norm, dm.interpolation) == (48, 1.4, "inter_pupil", "area")  # set / saved / default
    dm = instantiate(data_for_checkpoint(split.data, saved))  # ${sampler}, ${augment} still resolve
    assert dm.image_size == 96 and dm.norm == "inter_ocular" and dm.sampler_factory is not None


# ---- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["empty", "images_only"])
def test_folder_without_pairs_names_the_folder_and_the_pattern(tmp_path, checkpoint, content):
    folder = tmp_path / "nothing_here"
    folder.mkdir()
    if content == "images_only":
        cv2.imwrite(str(folder / "a.png"), np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match=r"data\.root='\.' under data\.data_dir=.*nothing_here.*no \.pts files.*"
                                         r"image \+ \.pts pairs"):
        run_evaluate(checkpoint, tmp_path, "data=pts_folder", f"data.data_dir={folder}")


def test_missing_folder_is_named(tmp_path, checkpoint):
    with pytest.raises(FileNotFoundError, match=r"data\.data_dir=.*gone"):
        run_evaluate(checkpoint, tmp_path, "data=pts_folder", f"data.data_dir={tmp_path / 'gone'}")


def test_checkpoint_of_another_task_is_refused(tmp_path):
    write_faces(tmp_path / "faces", 2, seed=3)
    ckpt = tmp_path / "arcface.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {},
                "zoo": {"model_class": "zoo.models.recognition.ArcFaceModel", "config": {}}}, ckpt)
    with pytest.raises(ValueError, match=r"arcface\.ckpt.*ArcFaceModel is a 'identities' model.*'landmarks'"):
        run_evaluate(ckpt, tmp_path, "data=pts_folder", f"data.data_dir={tmp_path / 'faces'}")


def test_crop_size_other_than_the_models_is_refused(tmp_path, checkpoint):
    write_faces(tmp_path / "faces", 2, seed=4)
    with pytest.raises(ValueError, match=rf"data\.image_size: the data gives image_size=48 .* trained with "
                                         rf"image_size={SIZE}; expected data\.image_size={SIZE}"):
        run_evaluate(checkpoint, tmp_path, "data=pts_folder", f"data.data_dir={tmp_path / 'faces'}",
                     "data.image_size=48")


def test_a_test_only_config_cannot_train(tmp_path):
    write_faces(tmp_path / "faces", 4, seed=5)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["data=pts_folder", f"data.data_dir={tmp_path / 'faces'}", "data.num_workers=0",
                                          "data.image_size=32", "logger=csv", f"paths.output_dir={tmp_path}",
                                          "trainer.max_steps=1"])
    with pytest.raises(ValueError, match=r"data\.test_only=True is invalid.*nothing to train on"):
        train(cfg)
