"""Reader for the Surrey Face Model in the eos binary format (Huber et al., "A multiresolution 3D morphable face
model and fitting framework", VISAPP 2016; github.com/patrikhuber/eos, files under share/).

Layout (cereal BinaryArchive, little endian, as written by eos's MorphableModel/PcaModel serialisers):

    uint32 class version of MorphableModel
    PcaModel shape:  mean, orthonormal_pca_basis, eigenvalues : Eigen matrices, each
                         int32 rows, int32 cols, rows·cols float32 column-major
                     triangle_list : uint64 n, then n × int32[3]
    PcaModel colour (empty for the shape-only SFM), then texture coordinates etc. (ignored here)

expression_blendshapes_3448.bin: uint64 n, then n × (uint64 len, name bytes, Eigen [3V,1] deformation).
Eigenvalues are variances: σ = √λ. The SFM is shape-only; its colour model is transferred from the built-in
model (zoo.synth.builtin.transfer_builtin_color). Units: millimetres.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from zoo.synth.builtin import transfer_builtin_color
from zoo.synth.landmarks import jaw_contour_setup, read_landmark_mapping
from zoo.synth.morphable import MorphableModel, normalise_units, orient_outward


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.buf = path.read_bytes()
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"{self.path}: truncated or malformed eos binary file while reading {what} "
                             f"(needs {n} bytes at offset {self.pos}, file has {len(self.buf)})")
        out = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def matrix(self, what: str) -> np.ndarray:
        rows, cols = self.scalar("i", what + " rows"), self.scalar("i", what + " cols")
        if rows < 0 or cols < 0 or rows * cols > 10 ** 9:
            raise ValueError(f"{self.path}: implausible matrix size {rows}x{cols} for {what}")
        data = np.frombuffer(self.take(4 * rows * cols, what), dtype="<f4")
        return data.reshape(cols, rows).T.copy()  # column-major


def read_eos_pca(r: _Reader, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mean = r.matrix(f"{what} mean")
    basis = r.matrix(f"{what} orthonormal_pca_basis")
    eig = r.matrix(f"{what} eigenvalues")
    n = r.scalar("Q", f"{what} triangle count")
    tris = np.frombuffer(r.take(12 * n, f"{what} triangles"), dtype="<i4").reshape(n, 3).copy()
    if mean.shape[1] != 1 or (mean.size and (basis.shape[0] != mean.shape[0] or eig.shape[0] != basis.shape[1])):
        raise ValueError(f"{r.path}: inconsistent {what} model: mean {mean.shape}, basis {basis.shape}, "
                         f"eigenvalues {eig.shape}")
    return mean[:, 0], basis, eig[:, 0], tris


def read_blendshapes(path: Path, num_vertices: int) -> tuple[list[str], np.ndarray]:
    r = _Reader(path)
    n = r.scalar("Q", "blendshape count")
    if n > 1000:
        raise ValueError(f"{path}: implausible blendshape count {n}; not an eos blendshapes file?")
    names, cols = [], []
    for i in range(n):
        ln = r.scalar("Q", f"blendshape {i} name length")
        names.append(bytes(r.take(ln, f"blendshape {i} name")).decode("utf-8", "replace"))
        d = r.matrix(f"blendshape {names[-1]!r}")
        if d.shape != (3 * num_vertices, 1):
            raise ValueError(f"{path}: blendshape {names[-1]!r} has shape {d.shape}, expected "
                             f"[{3 * num_vertices}, 1] for a {num_vertices}-vertex model")
        cols.append(d[:, 0])
    return names, np.stack(cols, 1) if cols else np.zeros((3 * num_vertices, 0), np.float32)


def load_sfm(path: str | os.PathLike, landmark_mapping: str | None = None, contour: str | None = None,
             num_color: int = 40) -> MorphableModel:
    """Surrey Face Model from a folder (sfm_shape_*.bin, expression_blendshapes_*.bin, ibug_to_sfm.txt,
    sfm_model_contours.json) or from the shape .bin file itself (the other files looked up beside it)."""
    p = Path(path)
    if p.is_dir():
        cands = sorted(p.glob("sfm_shape_*.bin"))
        if not cands:
            raise FileNotFoundError(f"{p}: no sfm_shape_*.bin file (the Surrey Face Model in eos format)")
        model_file, folder = cands[0], p
    elif p.is_file():
        model_file, folder = p, p.parent
    else:
        raise FileNotFoundError(f"Surrey Face Model {p} does not exist")
    r = _Reader(model_file)
    version = r.scalar("I", "MorphableModel version")
    if version > 10:
        raise ValueError(f"{model_file}: unexpected class version {version}; not an eos MorphableModel file?")
    mean, basis, eig, tris = read_eos_pca(r, "shape")
    if mean.size % 3 or mean.size == 0:
        raise ValueError(f"{model_file}: shape mean has {mean.size} values, expected 3 per vertex")
    v = mean.size // 3
    verts = mean.reshape(v, 3)
    tag = model_file.stem.rsplit("_", 1)[-1]
    bs_file = folder / f"expression_blendshapes_{tag}.bin"
    if bs_file.exists():
        names, expr = read_blendshapes(bs_file, v)
    else:
        names, expr = [], np.zeros((3 * v, 0), np.float32)
    mapping = Path(landmark_mapping) if landmark_mapping else folder / "ibug_to_sfm.txt"
    idx = read_landmark_mapping(mapping, v)
    scale = normalise_units(verts, float(np.linalg.norm(verts[idx[36]] - verts[idx[45]]))
                            if idx[36] >= 0 and idx[45] >= 0 else float("nan"))
    verts, basis_std = verts * scale, np.sqrt(np.maximum(eig, 0)) * scale
    expr_std = np.linalg.norm(expr, axis=0) * scale
    expr = expr / np.maximum(np.linalg.norm(expr, axis=0), 1e-12)
    tris = orient_outward(verts, tris)
    chains = directions = None
    contour_file = Path(contour) if contour else folder / "sfm_model_contours.json"
    if contour_file.exists() and idx[8] >= 0:
        chains, directions = jaw_contour_setup(verts, idx, contour_file)
    elif contour:
        raise FileNotFoundError(f"model contour file {contour_file} does not exist")
    mean_color, color_basis, color_std = transfer_builtin_color(verts, idx, num_color)
    return MorphableModel(
        name="sfm", mean_shape=verts, shape_basis=basis, shape_std=basis_std, mean_color=mean_color,
        color_basis=color_basis, color_std=color_std, expression_basis=expr, expression_std=expr_std,
        triangles=tris, landmarks={"ibug68": idx}, expression_names=names,
        expression_nonnegative=np.ones(len(names), bool), jaw_chains=chains, jaw_directions=directions)
