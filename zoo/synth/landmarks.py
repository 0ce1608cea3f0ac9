"""Landmarks of a rendered face: 2D positions, visibility (z-buffer test) and the 300-W jaw contour convention.

Visibility. Landmark vertex i with depth d_i projecting to pixel (round(u_i), round(v_i)) is visible when
d_i ≤ max(zbuf over the 3×3 window) + tol: the point is the nearest surface there (or on the silhouette,
where the window reaches the background). Points off the image are marked invisible.

Contour convention (Sagonas et al., 300 Faces In-the-Wild 2013; the iBUG markup used by 300-W/Multi-PIE):
jaw points 0-16 lie on the visible outline of the face, not on fixed surface points. For each jaw point j the
model holds an outward direction d_j in the frontal (x, y) plane and a chain of candidate vertices (those whose
frontal projection lies within ``band`` mm of the ray from the face centre along d_j, between half and 1.02 times
the frontal outline distance, and on the front of the head). In "contour" mode the jaw point is the z-buffer-visible
candidate whose projection lies furthest along the image direction of R·d_j: the silhouette when that side
turns away from the camera, the frontal outline (the fixed vertex) when it turns towards it. (Before
rasterisation, for framing, the pick runs over all candidates; it is refined on the z-buffer afterwards.)
"fixed" mode keeps the frontal-outline vertex (the argmax at yaw = pitch = roll = 0).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from zoo.synth.render import neighbourhood_max

MODES = ("contour", "fixed")


def build_jaw_chains(verts: np.ndarray, centre_xy: np.ndarray, directions: np.ndarray,
                     front_mask: np.ndarray | None = None, band: float = 3.0,
                     fixed: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Candidate chains (list of vertex-index arrays) and fixed (frontal outline) vertices of the 17 jaw points.

    ``fixed``: given frontal-outline vertices (e.g. from a model-contour file); else the extreme front vertex
    within ``band`` of each ray."""
    xy = verts[:, :2] - np.asarray(centre_xy)[None]
    cand = np.arange(len(verts)) if front_mask is None else np.flatnonzero(front_mask)
    chains, out = [], np.zeros(len(directions), dtype=np.int64)
    for j, d in enumerate(np.asarray(directions, dtype=np.float64)):
        d = d / np.linalg.norm(d)
        t = xy[cand] @ d
        perp = np.abs(xy[cand] @ np.array([-d[1], d[0]]))
        on_ray = cand[(perp < band) & (t > 0)]
        if fixed is None:
            if len(on_ray) == 0:
                raise ValueError(f"jaw point {j}: no vertex within {band} mm of its ray; the mesh is too coarse")
            f = on_ray[np.argmax(xy[on_ray] @ d)]
        else:
            f = int(fixed[j])
        tf = xy[f] @ d
        tt = xy[on_ray] @ d
        chain = on_ray[(tt >= 0.5 * tf) & (tt <= 1.02 * tf) & (verts[on_ray, 2] >= verts[f, 2] - 5.0)]
        chains.append(np.unique(np.concatenate([chain, [f]])).astype(np.int64))
        out[j] = f
    return chains, out


def _flat_chains(chains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(concatenated candidates, segment id of each, sorted unique candidates)."""
    cat = np.concatenate(chains)
    seg = np.repeat(np.arange(len(chains)), [len(c) for c in chains])
    return cat, seg, np.unique(cat)


def contour_jaw(uv: np.ndarray, chains: list[np.ndarray], directions: np.ndarray, rotation: np.ndarray,
                visible: np.ndarray | None = None, flat: tuple | None = None) -> np.ndarray:
    """Vertex index of each jaw point under the contour convention (see module docstring).

    ``visible`` (bool over all vertices, optional): restrict each chain to its visible candidates, so the pick is
    the outline of what the camera sees (a chain point further out but hidden behind another part of the
    face is not the outline); chains without a visible candidate keep the unrestricted pick."""
    cat, seg, _ = flat if flat is not None else _flat_chains(chains)
    d3 = np.asarray(directions, np.float64) @ rotation[:2, :2].T.astype(np.float64)  # R·(dx, dy, 0), x and y rows
    di = np.stack([d3[:, 0], -d3[:, 1]], 1)  # image y points down
    score = (uv[cat] * di[seg]).sum(1)
    if visible is not None:
        vis = visible[cat]
        has = np.zeros(len(chains), bool)
        np.logical_or.at(has, seg, vis)
        score = np.where(vis | ~has[seg], score, -np.inf)
    # per-segment argmax: sort by (segment, score) and take each segment's last entry
    order = np.lexsort((score, seg))
    last = np.searchsorted(seg[order], np.arange(len(chains)), side="right") - 1
    return cat[order[last]].astype(np.int64)


def _model_flat(model) -> tuple:
    flat = getattr(model, "_jaw_flat", None)
    if flat is None:
        flat = _flat_chains(model.jaw_chains)
        model._jaw_flat = flat
    return flat


def refine_contour(model, idx: np.ndarray, uv: np.ndarray, depth: np.ndarray, zbuf: np.ndarray,
                   rotation: np.ndarray, tol: float) -> np.ndarray:
    """Re-pick the 17 jaw points among the z-buffer-visible chain candidates (after rendering)."""
    if model.jaw_chains is None:
        return idx
    flat = _model_flat(model)
    cand = flat[2]
    vis = np.zeros(len(uv), dtype=bool)
    vis[cand] = visibility(uv[cand], depth[cand], zbuf, tol)
    out = idx.copy()
    out[:17] = contour_jaw(uv, model.jaw_chains, model.jaw_directions, rotation, vis, flat)
    return out


def landmark_vertices(model, scheme: str, mode: str, uv: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Vertex indices of the landmarks of ``scheme`` for this view (-1 where the model lacks the point)."""
    if mode not in MODES:
        raise ValueError(f"landmark mode must be one of {MODES}, got {mode!r}")
    idx = model.landmark_indices(scheme).copy()
    if mode == "contour" and scheme == "ibug68" and model.jaw_chains is not None:
        idx[:17] = contour_jaw(uv, model.jaw_chains, model.jaw_directions, rotation, flat=_model_flat(model))
    return idx


def visibility(uv: np.ndarray, depth: np.ndarray, zbuf: np.ndarray, tol: float) -> np.ndarray:
    """bool [N]: the z-buffer test of the module docstring for points uv [N,2] with depths [N]."""
    xs = np.rint(uv[:, 0]).astype(np.int64)
    ys = np.rint(uv[:, 1]).astype(np.int64)
    zmax = neighbourhood_max(zbuf, xs, ys, 1)
    return depth <= zmax + tol


def inter_ocular(landmarks: np.ndarray, corners: tuple[int, int] = (36, 45)) -> float:
    """300-W normalising distance: ‖p_36 - p_45‖ between the outer eye corners (pixels)."""
    return float(np.linalg.norm(landmarks[corners[0]] - landmarks[corners[1]]))


def read_landmark_mapping(path: str | os.PathLike, num_vertices: int, num_landmarks: int = 68) -> np.ndarray:
    """Parse an eos landmark-mapping file (TOML: ``[landmark_mappings]`` then ``ibug = vertex  # comment`` lines,
    1-based iBUG numbers, 0-based vertex indices) -> [num_landmarks] vertex index, -1 where unmapped.

    ValueError naming the file when a line is malformed, a landmark number is out of range or a vertex index
    exceeds the model's ``num_vertices`` (a mapping made for another model resolution)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"landmark mapping file {path} does not exist")
    out = np.full(num_landmarks, -1, dtype=np.int64)
    section = None
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[] ")
            continue
        if section != "landmark_mappings":
            continue
        parts = [p.strip().strip('"') for p in line.split("=")]
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'landmark = vertex', got {raw.strip()!r}")
        try:
            lm, vert = int(parts[0]), int(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: landmark and vertex must be integers, got {raw.strip()!r}") from None
        if not 1 <= lm <= num_landmarks:
            raise ValueError(f"{path}:{lineno}: landmark {lm} outside 1..{num_landmarks} (1-based iBUG numbering)")
        if not 0 <= vert < num_vertices:
            raise ValueError(f"{path}:{lineno}: vertex {vert} outside the model's {num_vertices} vertices; "
                             f"is the mapping made for another model?")
        out[lm - 1] = vert
    if (out >= 0).sum() == 0:
        raise ValueError(f"{path}: no '[landmark_mappings]' entries found")
    return out


def read_contour(path: str | os.PathLike, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse an eos model-contour JSON ``{"model_contour": {"right_contour": [...], "left_contour": [...]}}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model contour file {path} does not exist")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))["model_contour"]
        right, left = np.asarray(d["right_contour"], np.int64), np.asarray(d["left_contour"], np.int64)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: expected {{'model_contour': {{'right_contour': [...], 'left_contour': [...]}}}} "
                         f"({type(e).__name__}: {e})") from None
    for name, c in (("right_contour", right), ("left_contour", left)):
        if c.ndim != 1 or len(c) < 2 or c.min() < 0 or c.max() >= num_vertices:
            raise ValueError(f"{path}: {name} must list >= 2 vertex indices in [0, {num_vertices})")
    return right, left


def jaw_from_contour(verts: np.ndarray, right: np.ndarray, left: np.ndarray, chin: int) -> np.ndarray:
    """Fixed jaw vertices 0..16 from model contours: jaw j (0..7) at arc fraction j/8 of the polyline
    right_contour → chin, jaw 16-j likewise on the left; 8 is the chin vertex."""
    out = np.empty(17, dtype=np.int64)
    out[8] = chin
    for chain, js in ((right, range(8)), (left, range(16, 8, -1))):
        poly = np.concatenate([chain, [chin]])
        seg = np.linalg.norm(np.diff(verts[poly], axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        for n, j in enumerate(js):
            out[j] = poly[int(np.argmin(np.abs(arc - arc[-1] * n / 8.0)))]
    return out


def jaw_contour_setup(verts: np.ndarray, idx: np.ndarray, contour: str | os.PathLike
                      ) -> tuple[list[np.ndarray], np.ndarray]:
    """Apply a model's contour file (SFM / BFM 2017 ``*contours.json``): set the fixed jaw vertices
    ``idx[:17]`` in place from the contours (:func:`jaw_from_contour`) and return the jaw search chains and
    their outward 2D directions for the 300-W contour convention (:func:`build_jaw_chains`)."""
    right, left = read_contour(contour, len(verts))
    idx[:17] = jaw_from_contour(verts, right, left, int(idx[8]))
    centre = verts[idx[17:][idx[17:] >= 0]].mean(0)[:2]
    directions = verts[idx[:17], :2] - centre
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    chains, _ = build_jaw_chains(verts, centre, directions, band=4.0, fixed=idx[:17])
    return chains, directions
