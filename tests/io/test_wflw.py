"""WFLW list parsing: 196 coordinates, box, six attribute flags, image path."""
import numpy as np
import pytest

from zoo.io.wflw import WFLW_ATTRIBUTES, parse_wflw_line, read_wflw_list


def _line(flags=(1, 0, 0, 1, 0, 1), name="51--Dresses/51_x.jpg", shift=0.0):
    pts = [(10.0 + i + shift, 100.0 - i) for i in range(98)]
    nums = [f"{v:.3f}" for p in pts for v in p] + ["5", "6", "150", "160"] + [str(f) for f in flags]
    return " ".join(nums + [name]), np.asarray(pts, np.float32)


def test_parse_line(tmp_path):
    line, pts = _line()
    r = parse_wflw_line(line, "list.txt:1", tmp_path)
    np.testing.assert_allclose(r.landmarks, pts, atol=1e-3)
    np.testing.assert_allclose(r.box, [5, 6, 150, 160])
    assert r.attributes.tolist() == [1, 0, 0, 1, 0, 1] and len(WFLW_ATTRIBUTES) == 6
    assert r.image == tmp_path / "51--Dresses/51_x.jpg"
    assert parse_wflw_line(line, "l", tmp_path, one_based=True).landmarks[0].tolist() == [9.0, 99.0]


@pytest.mark.parametrize("mutate, pattern", [
    (lambda s: s.rsplit(" ", 2)[0] + " img.jpg", r"list\.txt:7: 206 fields, expected 207"),
    (lambda s: s.replace("10.000", "abc", 1), r"list\.txt:7: non-numeric value 'abc'"),
    (lambda s: s.replace("10.000", "nan", 1), r"list\.txt:7: non-finite"),
    (lambda s: s.replace(" 5 6 150 160 ", " 5 6 4 160 "), r"list\.txt:7: face box"),
    (lambda s: s.replace(" 1 0 0 1 0 1 ", " 1 0 0 2 0 1 "), r"list\.txt:7: attribute flags"),
])
def test_bad_lines(tmp_path, mutate, pattern):
    line, _ = _line()
    with pytest.raises(ValueError, match=pattern):
        parse_wflw_line(mutate(line), "list.txt:7", tmp_path)


def test_read_list_defaults_and_skip(tmp_path):
    ann = tmp_path / "WFLW_annotations"
    ann.mkdir()
    (tmp_path / "WFLW_images").mkdir()
    a, _ = _line()
    b, _ = _line(shift=1.0)  # a second face in the same image
    bad = "1 2 3 x.jpg"
    (ann / "train.txt").write_text("\n".join([a, "", b, bad]) + "\n")
    with pytest.raises(ValueError, match=r"train\.txt:4: 4 fields"):
        read_wflw_list(ann / "train.txt")
    errors = []
    recs = read_wflw_list(ann / "train.txt", errors=errors)
    assert [r.key for r in recs] == ["train/51--Dresses/51_x.jpg", "train/51--Dresses/51_x.jpg#1"]
    assert recs[0].image == tmp_path / "WFLW_images" / "51--Dresses/51_x.jpg"
    assert len(errors) == 1 and errors[0][0].endswith("train.txt:4")
