"""LFW pairs.txt reader/writer on small files written here, and the errors naming file and line."""
from __future__ import annotations

import pytest

from zoo.io.lfw_pairs import PairRecord, pair_paths, read_lfw_pairs, write_lfw_pairs

TWO_SETS = """2\t2
Ann_A\t1\t2
Bob_B\t1\t3
Ann_A\t1\tBob_B\t2
Cid_C\t1\tAnn_A\t2
Bob_B\t2\t3
Cid_C\t1\t2
Bob_B\t3\tCid_C\t2
Ann_A\t2\tCid_C\t1
"""


def test_read_two_sets(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text(TWO_SETS)
    recs = read_lfw_pairs(f)
    assert recs[0] == PairRecord("Ann_A", 1, "Ann_A", 2, True, 0, 2)
    assert recs[2] == PairRecord("Ann_A", 1, "Bob_B", 2, False, 0, 4)
    assert recs[7] == PairRecord("Ann_A", 2, "Cid_C", 1, False, 1, 9)
    assert [r.fold for r in recs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [r.same for r in recs] == [True, True, False, False] * 2


def test_view1_single_number_header_and_roundtrip(tmp_path):
    f = tmp_path / "dev.txt"
    f.write_text("1\nAnn_A 1 2\nAnn_A 1 Bob_B 1\n")  # spaces instead of tabs are fine
    recs = read_lfw_pairs(f)
    assert [(r.same, r.fold) for r in recs] == [(True, 0), (False, 0)]
    out = tmp_path / "out.txt"
    write_lfw_pairs(out, read_lfw_pairs(tmp_path / "dev.txt"))
    assert out.read_text() == "1\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t1\n"


@pytest.mark.parametrize("text, match", [
    ("", "empty pairs file"),
    ("10 300 7\n", "header must be"),
    ("x 2\n", "header set count must be an integer"),
    ("1 2\nA 1 2\nA 1 3\nA 1 B 1\n", "4 pair lines, found 3"),
    ("1 1\nA 1 B 1\nA 1 2\n", r":2: set 1 should have its 1 same lines first"),
    ("1 1\nA 1 2\nA 1 B\n", r":3: expected 'name n1 n2'.*got 3 fields|:3: .*image number"),
    ("1 1\nA one 2\nA 1 B 1\n", r":2: image number must be an integer, got 'one'"),
    ("1 1\nA 1 2\nA 1 A 2\n", r":3: 'different' pair names the same person"),
])
def test_format_errors_name_file_and_line(tmp_path, text, match):
    f = tmp_path / "p.txt"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_lfw_pairs(f)


def test_missing_pairs_file():
    with pytest.raises(FileNotFoundError, match="nope.txt does not exist"):
        read_lfw_pairs("nope.txt")


def test_pair_paths_pattern_and_missing_file(tmp_path):
    for name, n in (("Ann_A", 1), ("Ann_A", 2), ("Bob_B", 1)):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{n:04d}.jpg").write_bytes(b"x")
    f = tmp_path / "pairs.txt"
    f.write_text("1 1\nAnn_A 1 2\nAnn_A 2 Bob_B 1\n")
    paths = pair_paths(read_lfw_pairs(f), tmp_path, pairs_file=f)
    assert paths[1] == (tmp_path / "Ann_A" / "Ann_A_0002.jpg", tmp_path / "Bob_B" / "Bob_B_0001.jpg", False)
    f.write_text("1 1\nAnn_A 1 2\nAnn_A 2 Bob_B 7\n")
    with pytest.raises(FileNotFoundError, match=r"pairs.txt:3: pair names Bob_B 7, but .*Bob_B_0007.jpg does not exist"):
        pair_paths(read_lfw_pairs(f), tmp_path, pairs_file=f)
    with pytest.raises(ValueError, match="only \\{name\\} and \\{num\\}"):
        pair_paths(read_lfw_pairs(f), tmp_path, pattern="{person}.jpg")
