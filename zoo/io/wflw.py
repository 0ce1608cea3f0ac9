"""WFLW annotation lists (Wu et al., "Look at Boundary", CVPR 2018): 98 points, a face box, six attributes.

Each line of ``list_98pt_rect_attr_{train,test}.txt`` is whitespace separated::

    x0 y0 ... x97 y97   x_min y_min x_max y_max   pose expression illumination make-up occlusion blur   path

196 coordinates, 4 box coordinates, 6 binary attribute flags, then the image path relative to the image
folder (``WFLW_images``). Coordinates are taken as 0-based pixels (as the released files are used by the
WFLW evaluation code); pass ``one_based=True`` to subtract 1. The six flags become per-subset tags
(``WFLW_ATTRIBUTES``) so metrics can be reported per WFLW subset.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.io.records import LandmarkRecord, check_landmarks

WFLW_POINTS = 98
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
_FIELDS = 2 * WFLW_POINTS + 4 + len(WFLW_ATTRIBUTES) + 1


def parse_wflw_line(line: str, origin: str, image_root: str | os.PathLike, source: str = "wflw",
                    one_based: bool = False) -> LandmarkRecord:
    """One WFLW annotation line -> record. ValueError naming ``origin`` (``file:line``) on any defect."""
    parts = line.split()
    if len(parts) != _FIELDS:
        raise ValueError(f"{origin}: {len(parts)} fields, expected {_FIELDS} (196 coordinates, 4 box values, "
                         f"6 attribute flags, image path)")
    try:
        nums = [float(v) for v in parts[:-1]]
    except ValueError:
        bad = next(v for v in parts[:-1] if not _is_float(v))
        raise ValueError(f"{origin}: non-numeric value {bad!r} before the image path") from None
    pts = np.asarray(nums[: 2 * WFLW_POINTS], dtype=np.float64).reshape(WFLW_POINTS, 2)
    points = check_landmarks(pts - 1.0 if one_based else pts, origin, WFLW_POINTS)
    box = np.asarray(nums[2 * WFLW_POINTS: 2 * WFLW_POINTS + 4], dtype=np.float32)
    if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"{origin}: face box {box.tolist()} must be finite with x_max > x_min and y_max > y_min")
    if one_based:
        box = box - 1.0
    flags = nums[2 * WFLW_POINTS + 4:]
    if any(f not in (0.0, 1.0) for f in flags):
        raise ValueError(f"{origin}: attribute flags {flags} must be 0 or 1 ({', '.join(WFLW_ATTRIBUTES)})")
    name = parts[-1]
    return LandmarkRecord(image=Path(image_root) / name, landmarks=points, key=f"{source}/{name}", source=source,
                          origin=origin, box=box, attributes=np.asarray(flags, dtype=np.int64))


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_wflw_list(path: str | os.PathLike, image_root: str | os.PathLike | None = None, one_based: bool = False,
                   errors: list[tuple[str, str]] | None = None) -> list[LandmarkRecord]:
    """Records of every non-empty line of a WFLW list, in file order.

    ``image_root`` defaults to ``<list folder>/../WFLW_images`` when that exists, else the list's folder.
    Bad lines raise ValueError naming ``file:line`` unless ``errors`` is a list (then appended and skipped).
    Keys are ``<list stem>/<image path>``, with ``#n`` appended to the n-th repeat (several faces per image).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: WFLW annotation list not found")
    if image_root is None:
        guess = path.parent.parent / "WFLW_images"
        image_root = guess if guess.is_dir() else path.parent
    records: list[LandmarkRecord] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            origin = f"{path}:{ln}"
            try:
                rec = parse_wflw_line(line, origin, image_root, source=path.stem, one_based=one_based)
            except ValueError as e:
                if errors is None:
                    raise
                errors.append((origin, str(e)))
                continue
            n = seen.get(rec.key, 0)
            seen[rec.key] = n + 1
            if n:
                rec.key = f"{rec.key}#{n}"
            records.append(rec)
    if not records and errors is None:
        raise ValueError(f"{path}: no annotation lines")
    return records
