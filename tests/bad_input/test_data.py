"""Bad-input suite, data files (issue 13): every defect fails early with an error naming the file (and line or
row where there is one) and saying what was expected. Small files are written to ``tmp_path``; nothing real."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bad_input.naming import raises_naming
from zoo.datamodules.identity import IdentityDataModule
from zoo.datamodules.landmark_folders import LandmarkDataModule
from zoo.datamodules.pairs import pairs_from_file
from zoo.io.images import read_image
from zoo.io.keypoint_csv import read_keypoint_csv
from zoo.io.lfw_pairs import read_lfw_pairs
from zoo.io.pts import read_pts
from zoo.io.wflw import read_wflw_list

SIZE = 60  # side of the written images, pixels


def _points(rng: np.random.Generator, n: int = 68) -> np.ndarray:
    return rng.uniform(10, SIZE - 10, size=(n, 2))


def _pts_text(points: np.ndarray, declared: int | None = None) -> str:
    body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in points)
    return f"version: 1\nn_points: {len(points) if declared is None else declared}\n{{\n{body}\n}}\n"


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (SIZE, SIZE), dtype=np.uint8))
    return path


def _faces(root: Path, n: int = 4) -> Path:
    """A 300-W style folder of ``n`` faces (image + 1-based .pts, 68 points inside the image)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        _image(root / f"f{i}.png", i)
        (root / f"f{i}.pts").write_text(_pts_text(_points(rng) + 1))
    return root


def _landmarks(**kw) -> LandmarkDataModule:
    kw.setdefault("num_workers", 0)
    kw.setdefault("batch_size", 2)
    kw.setdefault("val_fraction", 0.0)
    kw.setdefault("test_fraction", 0.0)
    return LandmarkDataModule(**kw)


def _csv(path: Path, rows: list[tuple[str, np.ndarray]], n: int = 68) -> Path:
    head = "filename," + ",".join(f"x{i},y{i}" for i in range(n))
    lines = [head] + [name + "," + ",".join(f"{v:.4f}" for v in pts.reshape(-1)) for name, pts in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- 300-W .pts folders ----------------------------------------------------------------------------------------
def test_pts_without_closing_brace(tmp_path):
    p = tmp_path / "a.pts"
    p.write_text(_pts_text(_points(np.random.default_rng(0))).replace("}", ""))
    raises_naming(lambda: read_pts(p), str(p), "missing closing '}'")


def test_pts_non_numeric_point(tmp_path):
    p = tmp_path / "a.pts"
    p.write_text(_pts_text(_points(np.random.default_rng(0))).replace("}", "abc def\n}"))
    raises_naming(lambda: read_pts(p), str(p), "point 68 line 'abc def' is not numeric")


def test_pts_declared_count_differs(tmp_path):
    p = tmp_path / "a.pts"
    p.write_text(_pts_text(_points(np.random.default_rng(0)), declared=70))
    raises_naming(lambda: read_pts(p), str(p), "n_points=70", "holds 68 points")


def test_pts_binary_garbage(tmp_path):
    p = tmp_path / "a.pts"
    p.write_bytes(b"\xff\xfe\x00garbage\x81")
    raises_naming(lambda: read_pts(p), str(p), "cannot read .pts file")


def test_pts_wrong_point_count_for_the_scheme(tmp_path):
    root = _faces(tmp_path / "faces")
    (root / "f1.pts").write_text(_pts_text(_points(np.random.default_rng(1), 67) + 1))
    raises_naming(lambda: _landmarks(root=str(root)).setup(), "f1.pts", "holds 67 points, expected 68")


def test_pts_nan_coordinate(tmp_path):
    root = _faces(tmp_path / "faces")
    pts = _points(np.random.default_rng(2))
    pts[7, 1] = np.nan
    (root / "f2.pts").write_text(_pts_text(pts))
    raises_naming(lambda: _landmarks(root=str(root)).setup(), "f2.pts", "point 7 has a non-finite coordinate")


def test_pts_without_image(tmp_path):
    root = _faces(tmp_path / "faces")
    (root / "f3.png").unlink()
    raises_naming(lambda: _landmarks(root=str(root)).setup(), "f3.pts", "no image beside it")


def test_unreadable_image_named_at_setup(tmp_path):
    root = _faces(tmp_path / "faces")
    (root / "f0.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    raises_naming(lambda: _landmarks(root=str(root)).setup(), "f0.png", "cannot decode image")


def test_truncated_jpeg_named(tmp_path):
    p = tmp_path / "t.jpg"
    cv2.imwrite(str(p), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    p.write_bytes(p.read_bytes()[:-200])
    raises_naming(lambda: read_image(p), str(p), "re:cannot decode image|truncated JPEG")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    raises_naming(lambda: _landmarks(root=str(tmp_path / "empty")).setup(), "empty", "no .pts files found")


def test_missing_folder(tmp_path):
    raises_naming(lambda: _landmarks(root=str(tmp_path / "nowhere")).setup(), "nowhere",
                  "landmark folder not found", error=FileNotFoundError)


def test_landmarks_thousands_of_pixels_outside_the_image(tmp_path):
    root = _faces(tmp_path / "faces")
    (root / "f1.pts").write_text(_pts_text(_points(np.random.default_rng(1)) * 100 + 5000))
    raises_naming(lambda: _landmarks(root=str(root)).setup(), "f1.pts", "outside the 60x60 image",
                  "expected pixel coordinates of this image")


def test_split_file_names_unknown_records(tmp_path):
    root = _faces(tmp_path / "faces")
    split = tmp_path / "train.txt"
    split.write_text("faces/f0.pts\nfaces/nobody.pts\n")
    raises_naming(lambda: _landmarks(root=str(root), split_files={"train": str(split)}).setup(),
                  str(split), "not found among the records", "nobody.pts")


# ---- keypoint CSV --------------------------------------------------------------------------------------------
def test_keypoint_csv_normalised_coordinates(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png")
    rng = np.random.default_rng(0)
    csv = _csv(tmp_path / "kp.csv", [("a.png", _points(rng)), ("b.png", _points(rng) / SIZE)])
    raises_naming(lambda: read_keypoint_csv(csv, num_points=68), f"{csv}:3",
                  "coordinates look normalised to [0, 1]; expected pixels")
    raises_naming(lambda: _landmarks(format="csv", annotations=str(csv)).setup(), f"{csv}:3",
                  "coordinates look normalised to [0, 1]; expected pixels")


def test_keypoint_csv_points_far_outside_the_image(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png")
    rng = np.random.default_rng(0)
    csv = _csv(tmp_path / "kp.csv", [("a.png", _points(rng)), ("b.png", _points(rng) + 3000)])
    raises_naming(lambda: _landmarks(format="csv", annotations=str(csv)).setup(), f"{csv}:3", "b.png",
                  "outside the 60x60 image")


def test_keypoint_csv_row_with_missing_fields(tmp_path):
    csv = _csv(tmp_path / "kp.csv", [("a.png", _points(np.random.default_rng(0)))])
    csv.write_text(csv.read_text() + "b.png,1,2,3\n")
    raises_naming(lambda: read_keypoint_csv(csv, num_points=68), f"{csv}:3", "4 fields, the header has 137")


def test_keypoint_csv_non_numeric_value(tmp_path):
    csv = _csv(tmp_path / "kp.csv", [("a.png", _points(np.random.default_rng(0)))])
    lines = csv.read_text().splitlines()
    fields = lines[1].split(",")
    fields[6] = "n/a"  # fields: filename, x0, y0, x1, y1, x2, y2
    csv.write_text("\n".join([lines[0], ",".join(fields)]) + "\n")
    raises_naming(lambda: read_keypoint_csv(csv, num_points=68), f"{csv}:2", "column 'y2' holds 'n/a'")


def test_keypoint_csv_without_header(tmp_path):
    csv = _csv(tmp_path / "kp.csv", [("a.png", _points(np.random.default_rng(0)))])
    csv.write_text("\n".join(csv.read_text().splitlines()[1:]) + "\n")
    raises_naming(lambda: read_keypoint_csv(csv, num_points=68), str(csv), "must be a header")


def test_keypoint_csv_missing_column(tmp_path):
    csv = _csv(tmp_path / "kp.csv", [("a.png", _points(np.random.default_rng(0), 67))], n=67)
    raises_naming(lambda: read_keypoint_csv(csv, num_points=68), str(csv), "missing column 'x67'")


def test_keypoint_csv_header_only(tmp_path):
    csv = _csv(tmp_path / "kp.csv", [])
    raises_naming(lambda: read_keypoint_csv(csv, num_points=68), str(csv), "header only")


# ---- WFLW lists ------------------------------------------------------------------------------------------------
def _wflw_line(rng: np.random.Generator, box=(5, 5, 55, 55), flags=(0, 1, 0, 0, 0, 0), name="a.png") -> str:
    nums = list(_points(rng, 98).reshape(-1)) + list(box) + list(flags)
    return " ".join(f"{v:g}" for v in nums) + f" {name}"


def test_wflw_wrong_column_count(tmp_path):
    rng = np.random.default_rng(0)
    lst = tmp_path / "list.txt"
    lst.write_text(_wflw_line(rng) + "\n" + _wflw_line(rng).split(" ", 1)[1] + "\n")
    raises_naming(lambda: read_wflw_list(lst, image_root=tmp_path), f"{lst}:2", "206 fields, expected 207")


def test_wflw_empty_box(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(_wflw_line(np.random.default_rng(0), box=(50, 5, 10, 55)) + "\n")
    raises_naming(lambda: read_wflw_list(lst, image_root=tmp_path), f"{lst}:1", "x_max > x_min")


def test_wflw_attribute_flag_not_binary(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(_wflw_line(np.random.default_rng(0), flags=(0, 2, 0, 0, 0, 0)) + "\n")
    raises_naming(lambda: read_wflw_list(lst, image_root=tmp_path), f"{lst}:1", "must be 0 or 1")


def test_wflw_list_with_a_300w_scheme(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(_wflw_line(np.random.default_rng(0)) + "\n")
    raises_naming(lambda: _landmarks(format="wflw", annotations=str(lst), image_root=str(tmp_path)).setup(),
                  "data.scheme=wflw98")


# ---- identity folders, lists and LFW pairs ----------------------------------------------------------------------
def _people(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        for k in range(1, n + 1):
            _image(root / name / f"{name}_{k:04d}.jpg", k)
    return root


def _identities(root: Path, **kw) -> IdentityDataModule:
    kw.setdefault("num_workers", 0)
    kw.setdefault("val_fraction", 0.0)
    kw.setdefault("test_fraction", 0.0)
    kw.setdefault("batch_size", 2)
    return IdentityDataModule(root=str(root), **kw)


def test_identity_folder_without_images(tmp_path):
    root = _people(tmp_path / "people", {"Ann": 2, "Bob": 2})
    (root / "Empty_Person").mkdir()
    raises_naming(lambda: _identities(root).setup(), "Empty_Person", "identity folder holds no images")


def test_identity_list_naming_a_missing_image(tmp_path):
    root = _people(tmp_path / "people", {"Ann": 2, "Bob": 2})
    lst = tmp_path / "list.csv"
    lst.write_text("path,identity\nAnn/Ann_0001.jpg,Ann\nBob/Bob_0009.jpg,Bob\n")
    raises_naming(lambda: _identities(root, layout="list", list_file=str(lst)).setup(), f"{lst}:3",
                  "Bob_0009.jpg does not exist", error=FileNotFoundError)


def test_identity_list_box_not_numeric(tmp_path):
    root = _people(tmp_path / "people", {"Ann": 2})
    lst = tmp_path / "list.csv"
    lst.write_text("path,identity,x,y,w,h\nAnn/Ann_0001.jpg,Ann,1,2,huge,10\nAnn/Ann_0002.jpg,Ann,1,2,5,10\n")
    raises_naming(lambda: _identities(root, layout="list", list_file=str(lst), crop="box",
                                      box_columns=["x", "y", "w", "h"]).setup(), f"{lst}:2", "are not numbers")


def test_lfw_pairs_naming_missing_images_are_listed_not_skipped(tmp_path):
    root = _people(tmp_path / "lfw", {"Ann": 2, "Bob": 1})
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1 2\nAnn 1 2\nAnn 1 3\nAnn 1 Carl 3\nBob 1 Dan 1\n")
    dm = _identities(root, val_root=str(root), pairs_files={"val": str(pairs)})
    raises_naming(lambda: dm.pairs("val"), f"{pairs}:3", "Ann_0003.jpg does not exist", "3 missing image(s) in all",
                  "line 4: Carl_0003.jpg, line 5: Dan_0001.jpg", error=FileNotFoundError)


def test_lfw_pairs_header_count_mismatch(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("10 300\nAnn 1 2\nAnn 1 Bob 1\n")
    raises_naming(lambda: read_lfw_pairs(pairs), str(pairs), "announces 10 sets", "found 2")


def test_lfw_pairs_line_with_wrong_field_count(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1 1\nAnn 1 2 3 4\nAnn 1 Bob 1\n")
    raises_naming(lambda: read_lfw_pairs(pairs), f"{pairs}:2", "got 5 fields")


def test_lfw_pair_file_outside_the_split(tmp_path):
    root = _people(tmp_path / "lfw", {"Ann": 2, "Bob": 1})
    other = _people(tmp_path / "other", {"Ann": 2})
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1 1\nAnn 1 2\nAnn 1 Bob 1\n")
    dm = _identities(other)
    dm.setup()
    raises_naming(lambda: pairs_from_file(dm.datasets["train"], pairs, root), f"{pairs}:2",
                  "is not part of the 'split' split")
