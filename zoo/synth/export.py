"""Write a synthetic dataset to disk (used by ``generate.py``) and draw the sample grid.

Layouts (per split, under ``out_dir/<split>/``):

* ``landmarks`` (300-W style): ``<identity:06d>_<k:03d>.png`` + ``.pts`` (68 points, 1-based on disk as in
  300-W; zoo.io.pts), readable by ``data=300w``-style folders (zoo.datamodules.landmark_folders, format pts_folder).
* ``identities`` (CASIA-WebFace style): ``<identity:06d>/<k:03d>.png``, one folder per identity
  (zoo.datamodules.identity, layout folders).

Every written sample gets a row in ``out_dir/<split>/params[_shard<i>of<n>].csv``: file, identity, k, yaw,
pitch, roll, light_0..26, expression coefficients, shape and colour coefficients (std units), norm and the
visibility string (one 0/1 per landmark). Files are written to a temporary name and renamed, so an existing
file is complete; a rerun skips samples whose image (+ .pts) and CSV row exist (resumable). ``shard=(i, n)``
renders the samples with global index ≡ i (mod n), 0 ≤ i < n, so n machines or array jobs split one dataset.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from zoo.io.pts import write_pts
from zoo.synth.generator import FaceGenerator

LAYOUTS = ("landmarks", "identities")


def parse_shard(shard: str | None) -> tuple[int, int]:
    """"i/n" -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if shard in (None, "", "null"):
        return 0, 1
    try:
        i, n = (int(v) for v in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"shard must be 'i/n' with integers (e.g. 3/16), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard {shard!r}: expected 0 <= i < n (0-based shard index i of n shards)")
    return i, n


def _atomic_image(path: Path, image: np.ndarray) -> None:
    img = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    img = img[..., 0] if img.shape[-1] == 1 else img[..., ::-1]
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), img):
        raise ValueError(f"cannot write image {tmp}")
    os.replace(tmp, path)


def _atomic_pts(path: Path, points: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".tmp.pts")
    write_pts(tmp, points)
    os.replace(tmp, path)


def _write_csv(path: Path, rows: dict[str, dict], header: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for key in sorted(rows):
            w.writerow(rows[key])
    os.replace(tmp, path)


def write_split(gen: FaceGenerator, out_dir: str | os.PathLike, split: str, stream: int, seed: int,
                num_identities: int, images_per_identity: int, layout: str = "landmarks",
                image_format: str = "png", shard: tuple[int, int] = (0, 1), progress: bool = True,
                flush_every: int = 500) -> dict[str, int]:
    """Render and write one split; returns {"written": n, "skipped": m}."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    root = Path(out_dir) / split
    root.mkdir(parents=True, exist_ok=True)
    i_shard, n_shard = shard
    csv_path = root / ("params.csv" if n_shard == 1 else f"params_shard{i_shard}of{n_shard}.csv")
    m = gen.model
    header = (["file", "split", "identity", "k", "yaw", "pitch", "roll", "norm", "visible"]
              + [f"light_{i}" for i in range(27)] + [f"expression_{n}" for n in m.expression_names]
              + [f"shape_{i}" for i in range(m.num_shape)] + [f"color_{i}" for i in range(m.num_color)])
    rows: dict[str, dict] = {}
    if csv_path.exists():
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != header:
                raise ValueError(f"{csv_path}: existing CSV has other columns than this configuration writes; "
                                 f"use another out_dir or delete it")
            rows = {r["file"]: r for r in reader}
    total = num_identities * images_per_identity
    indices: Iterable[int] = range(i_shard, total, n_shard)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, total=len(range(i_shard, total, n_shard)), desc=f"{split} shard {i_shard}/{n_shard}")
    written = skipped = 0
    for index in indices:
        identity, k = divmod(index, images_per_identity)
        if layout == "landmarks":
            rel = f"{identity:06d}_{k:03d}.{image_format}"
            img_path = root / rel
            pts_path = img_path.with_suffix(".pts")
        else:
            rel = f"{identity:06d}/{k:03d}.{image_format}"
            img_path = root / rel
            pts_path = None
        if rel in rows and img_path.exists() and (pts_path is None or pts_path.exists()):
            skipped += 1
            continue
        out, p = gen(seed, identity, k, stream)
        img_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_image(img_path, out["image"])
        if pts_path is not None:
            _atomic_pts(pts_path, out["landmarks"])
        row = {"file": rel, "split": split, "identity": identity, "k": k, "yaw": f"{p['yaw']:.4f}",
               "pitch": f"{p['pitch']:.4f}", "roll": f"{p['roll']:.4f}", "norm": f"{float(out['norm']):.4f}",
               "visible": "".join("1" if v else "0" for v in out["visible"])}
        row.update({f"light_{i}": f"{v:.6g}" for i, v in enumerate(np.asarray(p["light"]).ravel())})
        row.update({f"expression_{n}": f"{v:.6g}" for n, v in zip(m.expression_names, p["expression"])})
        row.update({f"shape_{i}": f"{v:.6g}" for i, v in enumerate(p["shape"])})
        row.update({f"color_{i}": f"{v:.6g}" for i, v in enumerate(p["color"])})
        rows[rel] = row
        written += 1
        if written % flush_every == 0:
            _write_csv(csv_path, rows, header)
    _write_csv(csv_path, rows, header)
    return {"written": written, "skipped": skipped}


def draw_grid(gen: FaceGenerator, path: str | os.PathLike, rows: int = 4, cols: int = 8, seed: int = 0,
              scale: int = 2) -> np.ndarray:
    """Grid of rows×cols samples (identity i, image 0, stream 0) with landmarks drawn (green visible, red
    occluded), each tile upsampled ``scale``×; written as PNG to ``path``; returns the BGR grid."""
    tiles = []
    for i in range(rows * cols):
        out, _ = gen(seed, i, 0)
        img = np.clip(np.rint(out["image"] * 255), 0, 255).astype(np.uint8)
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.shape[-1] == 1 else np.ascontiguousarray(img[..., ::-1])
        s = img.shape[0] * scale
        img = cv2.resize(img, (s, s), interpolation=cv2.INTER_CUBIC)
        for (x, y), v in zip(out["landmarks"], out["visible"]):
            cv2.circle(img, (int(round((x + 0.5) * scale - 0.5)), int(round((y + 0.5) * scale - 0.5))), max(1, scale),
                       (60, 220, 60) if v else (40, 40, 230), -1, lineType=cv2.LINE_AA)
        tiles.append(img)
    grid = np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], 1) for r in range(rows)], 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise ValueError(f"cannot write grid image {path}")
    return grid
