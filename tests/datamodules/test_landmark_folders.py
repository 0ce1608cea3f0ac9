"""LandmarkDataModule on ../shared/data (skipped when absent) and on small bad folders written by the tests."""
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from zoo.datamodules.landmark_folders import LandmarkDataModule
from zoo.datamodules.landmark_datasets import group_of
from zoo.datamodules.samples import check_sample
from zoo.datamodules.transforms import fuhl2019
from zoo.io.pts import read_pts
from zoo.schemes import get_scheme


@pytest.fixture
def shared(shared_data):
    def get(name):
        p = shared_data / name
        if not p.exists():
            pytest.skip(f"{p} is absent (real data lives beside the repo only on the project's machines)")
        return p
    return get


def _dm(**kw):
    kw.setdefault("num_workers", 0)
    return LandmarkDataModule(**kw)


def _keys(dm, split):
    ds = dm.datasets[split]
    return [r.key for r in ds.records] if ds is not None else []


# ---- real data ------------------------------------------------------------------------------------------------
def test_afw_sizes_splits_deterministic_and_disjoint(shared):
    afw = shared("afw_68")
    dm = _dm(root=str(afw), split_by="group")
    dm.setup()
    n = len(list(afw.glob("*.pts")))
    sizes = dm.info.sizes
    assert sum(sizes.values()) == n == 337
    assert abs(sizes["val"] - 0.1 * n) <= 3 and abs(sizes["test"] - 0.1 * n) <= 3
    keys = {s: set(_keys(dm, s)) for s in ("train", "val", "test")}
    assert not (keys["train"] & keys["val"]) and not (keys["train"] & keys["test"]) and not (keys["val"] & keys["test"])
    # faces of one photo (111076519_1/_2) never straddle splits
    groups = {s: {group_of(r, "group") for r in dm.datasets[s].records} for s in keys}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["val"])
    again = _dm(root=str(afw), split_by="group")
    again.setup()
    assert all(_keys(again, s) == _keys(dm, s) for s in keys)
    other = _dm(root=str(afw), split_by="group", seed=1)
    other.setup()
    assert _keys(other, "test") != _keys(dm, "test")


def test_train_fraction_nested_subsets(shared):
    afw = shared("afw_68")
    full = _dm(root=str(afw))
    full.setup()
    n_train = full.info.sizes["train"]
    subsets = {}
    for f in (0.1, 0.25, 0.5):
        dm = _dm(root=str(afw), train_fraction=f)
        dm.setup()
        assert dm.info.sizes["train"] == int(np.ceil(f * n_train))
        assert _keys(dm, "test") == _keys(full, "test") and _keys(dm, "val") == _keys(full, "val")
        subsets[f] = set(_keys(dm, "train"))
    assert subsets[0.1] < subsets[0.25] < subsets[0.5] < set(_keys(full, "train"))


def test_sample_contract_and_hand_transformed_landmarks(shared):
    afw, helen = shared("afw_68"), shared("helen_train_68")
    dm = _dm(root=[str(afw), str(helen)], augment=fuhl2019())
    dm.setup()
    info = dm.info
    assert (info.task, info.scheme, info.num_landmarks, info.channels, info.image_size) == ("landmarks", "ibug68", 68, 1, 96)
    assert info.flip_permutation == list(get_scheme("ibug68").flip_permutation)
    assert sorted(Path(n).name for n in info.subset_names) == ["afw_68", "helen_train_68"]
    assert sum(info.sizes.values()) == 337 + len(list(helen.glob("*.pts")))
    for split in ("train", "val", "test"):
        s = dm.datasets[split][3]
        check_sample(s, "landmarks", where=split)
        assert s["image"].shape == (1, 96, 96) and 0 <= s["image"].min() and s["image"].max() <= 1
        assert s["visible"].all() and s["index"].item() == 3
        assert info.subset_names[int(s["subset"])] == Path(dm.datasets[split].records[3].source).name
    # evaluation crop by hand from the .pts file: square 1.25 x landmark box, 96 px, pixel-centre mapping
    val = dm.datasets["val"]
    rec = val.records[0]
    pts = read_pts(rec.origin)  # 0-based
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    side = 1.25 * max(x1 - x0, y1 - y0)
    expected = (pts - [(x0 + x1) / 2, (y0 + y1) / 2]) * (96 / side) + 47.5
    s = val[0]
    np.testing.assert_allclose(s["landmarks"].numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(s["norm"].item(), np.linalg.norm(expected[36] - expected[45]), rtol=1e-5)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (64, 1, 96, 96) and batch["index"].dtype == torch.int64
    assert batch["index"].max() < info.sizes["train"]


def test_keypoint_csv_shared_data(shared):
    ytf = shared("ytf_keypoints")
    dm = _dm(format="csv", annotations=str(ytf / "training_frames_keypoints.csv"), image_root=str(ytf / "training"),
             split_by="group")
    dm.setup()
    assert sum(dm.info.sizes.values()) == 3452
    people = {s: {group_of(r, "group") for r in dm.datasets[s].records} for s in ("train", "test")}
    assert not (people["train"] & people["test"])  # frames of one person stay together
    check_sample(dm.datasets["test"][0], "landmarks")


# ---- bad input -------------------------------------------------------------------------------------------------
def _face_folder(root: Path, n=6, points=68):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(root / f"f{i}.png"), rng.integers(0, 255, (60, 60), dtype=np.uint8))
        pts = rng.uniform(10, 50, size=(points, 2)) + 1
        body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in pts)
        (root / f"f{i}.pts").write_text(f"version: 1\nn_points: {points}\n{{\n{body}\n}}\n")
    return root


def test_corrupt_image_named_at_setup_lazily_and_skipped(tmp_path, caplog):
    root = _face_folder(tmp_path / "faces")
    dm = _dm(root=str(root), val_fraction=0.0, test_fraction=0.0)
    dm.setup()
    (root / "f2.png").write_bytes(b"\x89PNG garbage")  # broken after setup: named when the sample is loaded
    ds = dm.datasets["train"]
    bad = [i for i, r in enumerate(ds.records) if r.image.name == "f2.png"][0]
    with pytest.raises(ValueError, match=r"f2\.png: cannot decode image"):
        ds[bad]
    with pytest.raises(ValueError, match=r"f2\.png: cannot decode image"):  # broken before: setup reads the header
        _dm(root=str(root), val_fraction=0.0, test_fraction=0.0).setup()
    with caplog.at_level(logging.WARNING):
        skip = _dm(root=str(root), val_fraction=0.0, test_fraction=0.0, on_bad_sample="skip")
        skip.setup()
    assert skip.info.sizes["train"] == 5 and len(skip.skipped) == 1 and "f2.png" in skip.skipped[0][1]
    assert "f2.png" in caplog.text and "skipped 1 bad sample(s) of 6" in caplog.text
    with pytest.raises(ValueError, match=r"f2\.png"):
        _dm(root=str(root), check_images=True).setup()


def test_wrong_point_count_and_nan(tmp_path):
    root = _face_folder(tmp_path / "faces")
    _face_folder(tmp_path / "short", n=1, points=5)
    (tmp_path / "short" / "f0.pts").rename(root / "short.pts")
    (tmp_path / "short" / "f0.png").rename(root / "short.png")
    with pytest.raises(ValueError, match=r"short\.pts: holds 5 points, expected 68"):
        _dm(root=str(root)).setup()
    text = (root / "f1.pts").read_text().splitlines()
    text[5] = "nan 3.0"
    (root / "f1.pts").write_text("\n".join(text))
    dm = _dm(root=str(root), on_bad_sample="skip", val_fraction=0, test_fraction=0)
    dm.setup()
    names = sorted(Path(o).name for o, _ in dm.skipped)
    assert names == ["f1.pts", "short.pts"] and dm.info.sizes["train"] == 5


def test_empty_folder_and_csv_missing_column(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no \.pts files"):
        _dm(root=str(tmp_path / "empty")).setup()
    header = "filename," + ",".join(f"x{i},y{i}" for i in range(68) if i != 30)
    (tmp_path / "k.csv").write_text(header + "\n")
    with pytest.raises(ValueError, match=r"k\.csv: missing column 'x30'"):
        _dm(format="csv", annotations=str(tmp_path / "k.csv")).setup()


def test_degenerate_annotation_and_config_errors(tmp_path):
    root = _face_folder(tmp_path / "faces", n=3)
    text = (root / "f0.pts").read_text().splitlines()
    text[3 + 36] = text[3 + 45]  # outer eye corners coincide
    (root / "f0.pts").write_text("\n".join(text))
    with pytest.raises(ValueError, match=r"f0\.pts: inter_ocular distance is 0"):
        _dm(root=str(root)).setup()
    for kw, pattern in [(dict(format="hdf5"), "data.format='hdf5' is invalid: unknown choice"),
                        (dict(norm="eyes"), "data.norm='eyes' is invalid: unknown choice"),
                        (dict(train_fraction=0.0), "data.train_fraction"),
                        (dict(val_fraction=0.6, test_fraction=0.5), "val_fraction \\+ data.test_fraction"),
                        (dict(on_bad_sample="ignore"), "on_bad_sample"),
                        (dict(scheme="ibug5"), "unknown landmark scheme")]:
        with pytest.raises(ValueError, match=pattern):
            _dm(root=str(root), **kw)
    with pytest.raises(ValueError, match="data.root=None is invalid: required"):
        _dm()


def test_split_files_and_per_split_roots(tmp_path):
    a = _face_folder(tmp_path / "a", n=6)
    b = _face_folder(tmp_path / "b", n=3)
    (tmp_path / "train.txt").write_text("a/f0.pts\na/f1.pts\nf2.pts\n")  # short keys resolve when unique? no: f2 in a and b
    with pytest.raises(ValueError, match=r"train\.txt: 1 listed sample"):
        _dm(root=[str(a), str(b)], split_files={"train": str(tmp_path / "train.txt")}).setup()
    (tmp_path / "train.txt").write_text("a/f0.pts\na/f1.pts\nf5.pts\n")  # f5 only in a
    (tmp_path / "test.txt").write_text("b/f0.pts\n")
    dm = _dm(root=[str(a), str(b)], split_files={"train": "train.txt", "test": "test.txt"}, data_dir=str(tmp_path))
    dm.setup()
    assert _keys(dm, "train") == ["a/f0.pts", "a/f1.pts", "a/f5.pts"] and _keys(dm, "test") == ["b/f0.pts"]
    assert dm.datasets["val"] is None
    dm = _dm(root={"train": "a", "test": "b"}, data_dir=str(tmp_path), val_fraction=0.34, split_by="sample")
    dm.setup()
    assert dm.info.sizes == {"train": 4, "val": 2, "test": 3}
    assert set(_keys(dm, "test")) == {f"b/f{i}.pts" for i in range(3)}


def test_wflw_lists_box_crop_and_attribute_subsets(tmp_path):
    (tmp_path / "WFLW_images" / "0--Parade").mkdir(parents=True)
    ann = tmp_path / "WFLW_annotations"
    ann.mkdir()
    rng = np.random.default_rng(0)
    lines = {"train": [], "test": []}
    for i in range(6):
        name = f"0--Parade/img_{i}.jpg"
        cv2.imwrite(str(tmp_path / "WFLW_images" / name), rng.integers(0, 255, (120, 140, 3), dtype=np.uint8))
        pts = rng.uniform(40, 80, size=(98, 2))
        pts[0] = (60, 50)  # the centre of the box below
        flags = [i % 2, 0, 1, 0, (i // 2) % 2, 1]
        nums = [f"{v:.4f}" for v in pts.ravel()] + ["30", "20", "90", "80"] + [str(f) for f in flags]
        lines["train" if i < 4 else "test"].append(" ".join(nums + [name]))
    for split, ls in lines.items():
        (ann / f"list_{split}.txt").write_text("\n".join(ls) + "\n")
    dm = _dm(format="wflw", scheme="wflw98", data_dir=str(tmp_path), val_fraction=0.25, image_root="WFLW_images",
             annotations={"train": "WFLW_annotations/list_train.txt", "test": "WFLW_annotations/list_test.txt"})
    dm.setup()
    assert dm.info.sizes == {"train": 3, "val": 1, "test": 2} and dm.info.num_landmarks == 98
    assert dm.attribute_names == ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
    s = dm.datasets["test"][1]
    check_sample(s, "landmarks")
    assert s["subset"].dtype == torch.int64 and s["subset"].tolist() == [1, 0, 1, 0, 0, 1]  # image 5
    assert s["attributes"].dtype == torch.bool
    # crop from the given box: side 1.25 x 60 = 75 around (60, 50); the box centre is the crop centre 47.5
    np.testing.assert_allclose(s["landmarks"][0].numpy(), [47.5, 47.5], atol=1e-4)
    batch = next(iter(dm.test_dataloader()))
    assert batch["subset"].shape == (2, 6)
    with pytest.raises(ValueError, match="set data.scheme=wflw98"):
        _dm(format="wflw", annotations=str(ann / "list_train.txt")).setup()


def test_fraction_split_by_hand():
    from zoo.datamodules.landmark_datasets import fraction_split
    from zoo.io.records import LandmarkRecord

    def rec(name):
        return LandmarkRecord(image=Path(f"/d/{name}.jpg"), landmarks=np.zeros((1, 2)), key=f"d/{name}", source="d",
                              origin=name)

    recs = [rec(f"p{g}_{i}") for g in range(10) for i in range(1 + g % 3)]  # 10 photos with 1-3 faces
    parts = fraction_split(recs, {"test": 0.2, "val": 0.2}, seed=3, split_by="group")
    n = len(recs)
    assert sum(len(v) for v in parts.values()) == n
    for k in ("test", "val"):
        assert abs(len(parts[k]) - round(0.2 * n)) <= 2  # up to one group (<= 3 faces) off
    photos = {k: {r.key.split("_")[0] for r in v} for k, v in parts.items()}
    assert not (photos["test"] & photos["val"]) and not (photos["rest"] & photos["test"])
    one = fraction_split([rec(f"img_{i}") for i in range(4)], {"val": 0.25}, seed=0, split_by="group")
    assert len(one["rest"]) == 4 and one["val"] == []  # a single group larger than the target stays in train


def test_without_augmentation_view(tmp_path):
    root = _face_folder(tmp_path / "faces", n=3)
    dm = _dm(root=str(root), augment=fuhl2019(), val_fraction=0, test_fraction=0)
    dm.setup()
    train = dm.datasets["train"]
    plain = train.without_augmentation()
    assert plain.augment is None and train.augment is not None and len(plain) == len(train)
    a, b = plain[1], plain[1]
    assert torch.equal(a["image"], b["image"]) and a["index"].item() == 1


def test_missing_image_found_at_setup(tmp_path):
    (tmp_path / "k.csv").write_text("filename," + ",".join(f"x{i},y{i}" for i in range(68)) + "\n"
                                    + "gone.jpg," + ",".join(f"{i % 7 + i / 10:.1f},{i % 5 + 1}" for i in range(68)) + "\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.jpg: image file not found \(annotation .*k\.csv:2\)"):
        _dm(format="csv", annotations=str(tmp_path / "k.csv")).setup()
