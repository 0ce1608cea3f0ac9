"""300-W folder reader: pairing images with .pts files, 1-based -> 0-based, errors naming the file."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from zoo.io.folders import read_pts_folder


def _pts_text(points, newline="\n", header=True):
    lines = (["version: 1", f"n_points: {len(points)}"] if header else []) + ["{"]
    lines += [f"{x} {y}" for x, y in points] + ["}"]
    return newline.join(lines) + newline


def _img(path: Path, h=40, w=50):
    cv2.imwrite(str(path), np.full((h, w, 3), 100, np.uint8))


def test_pairs_and_one_based_conversion(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "a.pts").write_text(_pts_text([(1, 1), (10.5, 20), (3, 4)]))
    _img(tmp_path / "b.png")
    (tmp_path / "b.pts").write_bytes(_pts_text([(2, 3), (4, 5), (6, 7)], newline="\r\n", header=False).encode())
    _img(tmp_path / "unlabelled.jpg")
    recs = read_pts_folder(tmp_path, num_points=3)
    assert [r.image.name for r in recs] == ["a.jpg", "b.png"]
    # hand conversion: file (1, 1) is the centre of the first pixel -> 0-based (0, 0)
    np.testing.assert_allclose(recs[0].landmarks, [[0, 0], [9.5, 19], [2, 3]])
    np.testing.assert_allclose(recs[1].landmarks, [[1, 2], [3, 4], [5, 6]])
    assert recs[0].key == f"{tmp_path.name}/a.pts" and recs[0].source == tmp_path.name
    assert recs[0].box is None and recs[0].attributes is None


def test_original_300w_layout_several_faces_per_image(tmp_path):
    _img(tmp_path / "111.jpg")
    (tmp_path / "111_1.pts").write_text(_pts_text([(1, 1), (2, 2)]))
    (tmp_path / "111_2.pts").write_text(_pts_text([(5, 5), (6, 6)]))
    recs = read_pts_folder(tmp_path, num_points=2)
    assert [r.image.name for r in recs] == ["111.jpg", "111.jpg"]
    assert len({r.key for r in recs}) == 2


def test_wrong_count_names_file(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "a.pts").write_text(_pts_text([(1, 1), (2, 2)]))
    with pytest.raises(ValueError, match=r"a\.pts.*2 points.*expected 3|a\.pts.*n_points"):
        read_pts_folder(tmp_path, num_points=3)


def test_nan_names_file(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "a.pts").write_text(_pts_text([(1, 1), ("nan", 2)]))
    with pytest.raises(ValueError, match=r"a\.pts.*non-finite"):
        read_pts_folder(tmp_path, num_points=2)


def test_missing_image_and_skip_mode(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "a.pts").write_text(_pts_text([(1, 1), (2, 2)]))
    (tmp_path / "orphan.pts").write_text(_pts_text([(1, 1), (2, 2)]))
    (tmp_path / "short.pts").write_text(_pts_text([(1, 1)]))
    _img(tmp_path / "short.jpg")
    with pytest.raises(ValueError, match=r"orphan\.pts: no image"):
        read_pts_folder(tmp_path, num_points=2)
    errors = []
    recs = read_pts_folder(tmp_path, num_points=2, errors=errors)
    assert [r.image.name for r in recs] == ["a.jpg"]
    assert sorted(Path(f).name for f, _ in errors) == ["orphan.pts", "short.pts"]


def test_empty_and_missing_folder(tmp_path):
    _img(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match=rf"{tmp_path.name}: no \.pts files"):
        read_pts_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_pts_folder(tmp_path / "nope")
