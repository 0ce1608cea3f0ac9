"""300-W / iBUG ``.pts`` landmark files.

Format::

    version: 1
    n_points:  68
    {
    x y
    ...
    }

Coordinates in the files are 1-based (Matlab convention of the 300-W annotations); zoo uses 0-based
pixel-centre coordinates, so ``read_pts`` subtracts 1 and ``write_pts`` adds 1 (``one_based=True``).
The header is parsed tolerantly (extra whitespace, missing ``version`` line, CRLF line ends).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


def read_pts(path: str | os.PathLike, num_points: int | None = None, one_based: bool = True) -> np.ndarray:
    """Read a .pts file into float32 [N, 2] 0-based x, y. ValueError naming the file on any defect."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read .pts file ({e})") from e
    lines = [ln.strip() for ln in text.replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    declared = None
    body: list[str] = []
    inside = False
    for ln in lines:
        low = ln.lower()
        if not inside:
            if low.startswith("n_points"):
                try:
                    declared = int(ln.split(":", 1)[1])
                except (IndexError, ValueError):
                    raise ValueError(f"{path}: malformed header line {ln!r}; expected 'n_points: N'") from None
            elif ln.startswith("{"):
                inside = True
            elif low.startswith("version"):
                continue
            else:
                raise ValueError(f"{path}: unexpected header line {ln!r}; expected 'version:', 'n_points:' or '{{'")
        else:
            if ln.startswith("}"):
                inside = False
                break
            body.append(ln)
    if inside:
        raise ValueError(f"{path}: missing closing '}}'")
    pts = []
    for i, ln in enumerate(body):
        parts = ln.replace(",", " ").split()
        if len(parts) != 2:
            raise ValueError(f"{path}: point {i} line {ln!r} must hold two numbers 'x y'")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"{path}: point {i} line {ln!r} is not numeric") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{path}: point {i} has a non-finite coordinate ({ln!r})")
        pts.append((x, y))
    if declared is not None and declared != len(pts):
        raise ValueError(f"{path}: header declares n_points={declared} but the file holds {len(pts)} points")
    if num_points is not None and len(pts) != num_points:
        raise ValueError(f"{path}: holds {len(pts)} points, expected {num_points}")
    arr = np.asarray(pts, dtype=np.float32).reshape(-1, 2)
    return arr - 1.0 if one_based else arr


def write_pts(path: str | os.PathLike, points: np.ndarray, one_based: bool = True) -> None:
    """Write [N, 2] 0-based x, y points as a 300-W .pts file (1-based on disk by default)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{path}: points must be [N, 2], got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{path}: points contain NaN/inf")
    if one_based:
        pts = pts + 1.0
    lines = ["version: 1", f"n_points: {len(pts)}", "{"] + [f"{x:.3f} {y:.3f}" for x, y in pts] + ["}"]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
