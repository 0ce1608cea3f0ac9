"""zoo.io.pts: 300-W .pts reader/writer against hand-written files."""
import numpy as np
import pytest

from zoo.io.pts import read_pts, write_pts


def test_read_one_based_header_tolerant(tmp_path):
    p = tmp_path / "a.pts"
    p.write_bytes(b"version: 1\r\nn_points:  3\r\n{\r\n1 1\r\n10.5 20\r\n3 4\r\n}\r\n")
    np.testing.assert_allclose(read_pts(p), [[0, 0], [9.5, 19], [2, 3]])
    np.testing.assert_allclose(read_pts(p, one_based=False), [[1, 1], [10.5, 20], [3, 4]])


@pytest.mark.parametrize("body,match", [
    ("n_points: 3\n{\n1 1\n2 2\n}\n", "declares n_points=3"),
    ("n_points: 2\n{\n1 nan\n2 2\n}\n", "non-finite"),
    ("n_points: 2\n{\n1 1\n2 2\n", "closing"),
    ("n_points: 2\n{\n1 1 1\n2 2\n}\n", "two numbers"),
])
def test_bad_files_name_the_file(tmp_path, body, match):
    p = tmp_path / "bad.pts"
    p.write_text(body)
    with pytest.raises(ValueError, match=match) as e:
        read_pts(p)
    assert "bad.pts" in str(e.value)


def test_wrong_point_count_and_round_trip(tmp_path):
    pts = np.array([[0.0, 1.5], [10.25, 3.0]], dtype=np.float32)
    write_pts(tmp_path / "b.pts", pts)
    assert (tmp_path / "b.pts").read_text().splitlines()[:3] == ["version: 1", "n_points: 2", "{"]
    np.testing.assert_allclose(read_pts(tmp_path / "b.pts"), pts, atol=1e-3)
    with pytest.raises(ValueError, match="expected 68"):
        read_pts(tmp_path / "b.pts", num_points=68)
