"""300-W style landmark folders: each face is an image with a ``.pts`` file of the same stem beside it.

``afw/1051618982_1.jpg`` + ``afw/1051618982_1.pts``. The original 300-W AFW layout, where one image holds
several faces (``111076519.jpg`` with ``111076519_1.pts``, ``111076519_2.pts``), is understood too: when no
image has the .pts stem, the stem without its trailing ``_<n>`` is tried. Coordinates are converted from the
files' 1-based convention to 0-based by :func:`zoo.io.pts.read_pts`.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from zoo.io.images import IMAGE_SUFFIXES
from zoo.io.pts import read_pts
from zoo.io.records import LandmarkRecord, check_landmarks

log = logging.getLogger(__name__)
_FACE_SUFFIX = re.compile(r"_\d+$")


def _find_image(pts: Path, by_stem: dict[str, Path]) -> Path | None:
    for stem in (pts.stem, _FACE_SUFFIX.sub("", pts.stem)):
        img = by_stem.get(str(pts.parent / stem))
        if img is not None:
            return img
    return None


def read_pts_folder(root: str | os.PathLike, num_points: int | None = None, one_based: bool = True,
                    errors: list[tuple[str, str]] | None = None) -> list[LandmarkRecord]:
    """All (image, .pts) pairs under ``root`` (recursive), sorted by path.

    A defective .pts (wrong point count, NaN, unreadable) or a .pts without an image raises ValueError naming
    the file, unless ``errors`` is a list: then ``(file, reason)`` is appended to it and the face skipped.
    A folder that is missing or holds no .pts file always raises.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: landmark folder not found (expected a folder of images with .pts files)")
    pts_files = sorted(root.rglob("*.pts"))
    if not pts_files:
        raise ValueError(f"{root}: no .pts files found (expected 300-W style image + .pts pairs)")
    by_stem: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            by_stem.setdefault(str(p.with_suffix("")), p)
    records: list[LandmarkRecord] = []
    used: set[Path] = set()
    for pts in pts_files:
        try:
            img = _find_image(pts, by_stem)
            if img is None:
                raise ValueError(f"{pts}: no image beside it (looked for {pts.stem} or "
                                 f"{_FACE_SUFFIX.sub('', pts.stem)} with suffix {'/'.join(IMAGE_SUFFIXES)})")
            points = check_landmarks(read_pts(pts, num_points=num_points, one_based=one_based), str(pts), num_points)
        except ValueError as e:
            if errors is None:
                raise
            errors.append((str(pts), str(e)))
            continue
        used.add(img)
        rel = pts.relative_to(root).as_posix()
        records.append(LandmarkRecord(image=img, landmarks=points, key=f"{root.name}/{rel}", source=root.name,
                                      origin=str(pts)))
    unlabelled = len(set(by_stem.values()) - used)
    if unlabelled:
        log.info("%s: %d image(s) without a .pts file are not samples", root, unlabelled)
    return records
