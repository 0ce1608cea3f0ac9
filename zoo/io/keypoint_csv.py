"""Keypoint CSV files: one face per row, ``filename,x0,y0,x1,y1,...`` with a header row.

Two header spellings are understood (case-insensitive):

* named:    ``filename,x0,y0,x1,y1,...``   (columns matched by name, any order, extra columns ignored)
* numbered: ``,0,1,2,3,...``               (column ``2i`` is x_i, ``2i+1`` is y_i; the Udacity / YouTube-Faces
  facial-keypoints layout, e.g. ``../shared/data/ytf_keypoints/training_frames_keypoints.csv``)

The first column holds the image path (relative to ``image_root``, by default the CSV's folder) unless
``filename_column`` names another. Coordinates are 0-based pixels unless ``one_based=True`` (then 1 is
subtracted). Every defect raises ValueError naming the file, the line and the column.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from zoo.io.records import LandmarkRecord, check_landmarks

_NAMED = re.compile(r"^([xy])_?(\d+)$", re.IGNORECASE)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _coordinate_columns(header: list[str], fname_col: int, path: Path, num_points: int | None) -> list[tuple[int, int]]:
    """[(x column, y column)] per point, from the header. ValueError naming the first missing column."""
    named: dict[tuple[str, int], int] = {}
    numbered: dict[int, int] = {}
    for j, name in enumerate(header):
        if j == fname_col:
            continue
        n = name.strip()
        if not n.isdigit() and _is_number(n):
            raise ValueError(f"{path}: the first row must be a header naming the coordinate columns "
                             f"('filename,x0,y0,x1,y1,...' or ',0,1,2,...'); it holds the value {n!r} (data?)")
        m = _NAMED.match(n)
        if m:
            named[(m.group(1).lower(), int(m.group(2)))] = j
        elif n.isdigit():
            numbered[int(n)] = j
    if named and numbered:
        raise ValueError(f"{path}: header mixes named (x0,y0,...) and numbered (0,1,...) coordinate columns")
    if named:
        count = num_points if num_points is not None else max(i for _, i in named) + 1
        cols = []
        for i in range(count):
            for axis in ("x", "y"):
                if (axis, i) not in named:
                    raise ValueError(f"{path}: missing column '{axis}{i}' in the header (expected x0,y0,...,"
                                     f"x{count - 1},y{count - 1} for {count} points)")
            cols.append((named[("x", i)], named[("y", i)]))
        return cols
    if numbered:
        count = num_points if num_points is not None else (max(numbered) + 2) // 2
        for c in range(2 * count):
            if c not in numbered:
                raise ValueError(f"{path}: missing column '{c}' in the header (expected numbered columns "
                                 f"0..{2 * count - 1} for {count} points, x then y; is the header row missing?)")
        return [(numbered[2 * i], numbered[2 * i + 1]) for i in range(count)]
    raise ValueError(f"{path}: the first row must be a header naming the coordinate columns "
                     f"('filename,x0,y0,x1,y1,...' or ',0,1,2,...'), got {header[:4]}...")


def read_keypoint_csv(path: str | os.PathLike, num_points: int | None = None, image_root: str | os.PathLike | None = None,
                      filename_column: str | None = None, one_based: bool = False,
                      errors: list[tuple[str, str]] | None = None) -> list[LandmarkRecord]:
    """Records of every row of ``path``, in file order.

    Header defects (no header, missing column, unknown ``filename_column``) always raise. Row defects (wrong
    field count, empty/non-numeric/NaN value) raise ValueError naming ``file:line`` and the column, unless
    ``errors`` is a list: then ``(file:line, reason)`` is appended and the row skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: keypoint CSV not found")
    root = Path(image_root) if image_root is not None else path.parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    rows = [(ln, r) for ln, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: empty CSV (expected a header 'filename,x0,y0,...' and one row per face)")
    header = rows[0][1]
    if filename_column is None:
        fcol = 0
    else:
        names = [h.strip() for h in header]
        if filename_column not in names:
            raise ValueError(f"{path}: filename_column {filename_column!r} not in the header {names[:6]}...")
        fcol = names.index(filename_column)
    cols = _coordinate_columns(header, fcol, path, num_points)
    if len(rows) == 1:
        raise ValueError(f"{path}: header only, no rows")
    records: list[LandmarkRecord] = []
    seen: dict[str, int] = {}
    for ln, row in rows[1:]:
        origin = f"{path}:{ln}"
        try:
            if len(row) != len(header):
                raise ValueError(f"{origin}: {len(row)} fields, the header has {len(header)}")
            name = row[fcol].strip()
            if not name:
                raise ValueError(f"{origin}: empty file name in column {fcol}")
            pts = np.empty((len(cols), 2), dtype=np.float64)
            for i, (cx, cy) in enumerate(cols):
                for a, c in ((0, cx), (1, cy)):
                    try:
                        pts[i, a] = float(row[c])
                    except ValueError:
                        raise ValueError(f"{origin}: column '{header[c].strip()}' holds {row[c]!r}, "
                                         f"expected a number") from None
            points = check_landmarks(pts - 1.0 if one_based else pts, origin, num_points)
        except ValueError as e:
            if errors is None:
                raise
            errors.append((origin, str(e)))
            continue
        n = seen.get(name, 0)
        seen[name] = n + 1
        key = f"{path.stem}/{name}" + (f"#{n}" if n else "")
        records.append(LandmarkRecord(image=root / name, landmarks=points, key=key, source=path.stem, origin=origin))
    return records
