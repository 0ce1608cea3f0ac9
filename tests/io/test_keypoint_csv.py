"""Keypoint CSV reader: header spellings, CRLF/BOM, column errors naming the file and column."""
import numpy as np
import pytest

from zoo.io.keypoint_csv import read_keypoint_csv


def _write(path, text, crlf=False, bom=False):
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode())
    return path


def test_named_header_any_order_crlf_bom(tmp_path):
    p = _write(tmp_path / "k.csv", "filename,y1,x0,id,y0,x1\na.jpg,4,1,7,2,3\nsub/b.jpg,8.5,5,7,6,7\n",
               crlf=True, bom=True)
    recs = read_keypoint_csv(p, num_points=2)
    assert [r.image for r in recs] == [tmp_path / "a.jpg", tmp_path / "sub/b.jpg"]
    np.testing.assert_allclose(recs[0].landmarks, [[1, 2], [3, 4]])
    np.testing.assert_allclose(recs[1].landmarks, [[5, 6], [7, 8.5]])
    assert recs[0].key == "k/a.jpg" and recs[0].source == "k" and recs[0].origin.endswith("k.csv:2")


def test_numbered_header_udacity_layout_and_one_based(tmp_path):
    p = _write(tmp_path / "u.csv", ",0,1,2,3\nx.jpg,1,1,10,20\n")
    recs = read_keypoint_csv(p, image_root=tmp_path / "imgs", one_based=True)
    assert recs[0].image == tmp_path / "imgs" / "x.jpg"
    np.testing.assert_allclose(recs[0].landmarks, [[0, 0], [9, 19]])  # 1-based -> 0-based by hand


def test_inferred_count_and_duplicate_names(tmp_path):
    p = _write(tmp_path / "d.csv", "image,x0,y0,x1,y1,x2,y2\na.jpg,1,2,3,4,5,6\na.jpg,1,2,3,4,5,6\n")
    recs = read_keypoint_csv(p)
    assert recs[0].landmarks.shape == (3, 2)
    assert [r.key for r in recs] == ["d/a.jpg", "d/a.jpg#1"]


@pytest.mark.parametrize("text, pattern", [
    ("filename,x0,y0,x1\na.jpg,1,2,3\n", r"m\.csv: missing column 'y1'"),
    (",0,1,3\na.jpg,1,2,3\n", r"m\.csv: missing column '2'"),
    ("a.jpg,1.5,2.5,3,4\n", r"m\.csv: the first row must be a header"),
    ("filename,x0,y0,x1,y1\na.jpg,1,2,3\n", r"m\.csv:2: 4 fields"),
    ("filename,x0,y0,x1,y1\na.jpg,1,oops,3,4\n", r"m\.csv:2: column 'y0' holds 'oops'"),
    ("filename,x0,y0,x1,y1\na.jpg,1,2,,4\n", r"m\.csv:2: column 'x1' holds ''"),
    ("filename,x0,y0,x1,y1\na.jpg,1,2,nan,4\n", r"m\.csv:2: non-finite"),
    ("filename,x0,y0,x1,y1\n", r"m\.csv: header only"),
    ("", r"m\.csv: empty CSV"),
])
def test_errors_name_file_and_column(tmp_path, text, pattern):
    p = _write(tmp_path / "m.csv", text)
    with pytest.raises(ValueError, match=pattern):
        read_keypoint_csv(p, num_points=2)


def test_missing_column_when_more_points_expected(tmp_path):
    p = _write(tmp_path / "m.csv", "filename,x0,y0,x1,y1\na.jpg,1,2,3,4\n")
    with pytest.raises(ValueError, match=r"m\.csv: missing column 'x2'.*3 points"):
        read_keypoint_csv(p, num_points=3)


def test_skip_mode_collects_bad_rows(tmp_path):
    p = _write(tmp_path / "s.csv", "filename,x0,y0\na.jpg,1,2\nb.jpg,nan,2\nc.jpg,x,2\nd.jpg,3,4\n")
    errors = []
    recs = read_keypoint_csv(p, num_points=1, errors=errors)
    assert [r.image.name for r in recs] == ["a.jpg", "d.jpg"]
    assert [o.rsplit(":", 1)[1] for o, _ in errors] == ["3", "4"]
