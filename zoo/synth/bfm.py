"""Reader for the Basel Face Model 2017 (Gerig et al., "Morphable face models - an open framework", FG 2018),
the model seeds 000/001 sample, distributed as HDF5 (scalismo layout):

    /shape/model/{mean [3V], pcaBasis [3V,K] (orthonormal columns), pcaVariance [K]}
    /shape/representer/{points [3,V] (or [V,3]), cells [3,T] (or [T,3])}
    /color/model/{mean, pcaBasis, pcaVariance}          albedo in [0,1], same vertex order
    /expression/model/{mean, pcaBasis, pcaVariance}     (mean added to the shape mean; optional)

σ = √pcaVariance. Landmarks come from an eos-style iBUG-68 mapping file (``ibug_to_bfm2017*.txt`` next to the
.h5 by default; unmapped points are reported invisible) and the jaw line from a model-contour JSON when given
(``*bfm2017*contours.json`` next to the .h5). Units: millimetres (rescaled if the eye distance says otherwise).
Registration-restricted: zoo never ships it; users point ``data.model_path`` at their copy.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.synth.landmarks import jaw_contour_setup, read_landmark_mapping
from zoo.synth.morphable import MorphableModel, normalise_units, orient_outward


def _dataset(h5, path: Path, key: str, optional: bool = False):
    if key not in h5:
        if optional:
            return None
        raise ValueError(f"{path}: missing dataset '/{key}'; expected the Basel Face Model 2017 layout "
                         f"(/shape/model/{{mean,pcaBasis,pcaVariance}}, /shape/representer/{{points,cells}}, "
                         f"/color/model/..., /expression/model/...)")
    return np.asarray(h5[key][()])


def _pca(h5, path: Path, group: str, n3: int, optional: bool = False):
    mean = _dataset(h5, path, f"{group}/model/mean", optional)
    if mean is None:
        return None
    basis = _dataset(h5, path, f"{group}/model/pcaBasis")
    var = _dataset(h5, path, f"{group}/model/pcaVariance").ravel()
    mean = mean.ravel()
    if mean.shape != (n3,) or basis.ndim != 2 or basis.shape[0] != n3 or basis.shape[1] != var.shape[0]:
        raise ValueError(f"{path}: /{group}/model has mean {mean.shape}, pcaBasis {basis.shape}, pcaVariance "
                         f"{var.shape}; expected [{n3}], [{n3}, K], [K]")
    norms = np.linalg.norm(basis, axis=0)
    if len(norms) and np.abs(norms - 1).max() > 1e-2:
        raise ValueError(f"{path}: /{group}/model/pcaBasis columns must be orthonormal (norms 1), got norms in "
                         f"[{norms.min():.3g}, {norms.max():.3g}]")
    return mean.astype(np.float32), basis.astype(np.float32), np.sqrt(np.maximum(var, 0)).astype(np.float32)


def load_bfm2017(path: str | os.PathLike, landmark_mapping: str | None = None,
                 contour: str | None = None) -> MorphableModel:
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Basel Face Model file {path} does not exist")
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from None
    with h5:
        pts = _dataset(h5, path, "shape/representer/points")
        cells = _dataset(h5, path, "shape/representer/cells")
        if pts.ndim != 2 or 3 not in pts.shape:
            raise ValueError(f"{path}: /shape/representer/points must be [3,V] or [V,3], got {pts.shape}")
        v = pts.shape[1] if pts.shape[0] == 3 and pts.shape[1] != 3 else pts.shape[0]
        tris = cells.T if cells.shape[0] == 3 and cells.shape[1] != 3 else cells
        if tris.ndim != 2 or tris.shape[1] != 3:
            raise ValueError(f"{path}: /shape/representer/cells must be [3,T] or [T,3], got {cells.shape}")
        shape = _pca(h5, path, "shape", 3 * v)
        color = _pca(h5, path, "color", 3 * v)
        expr = _pca(h5, path, "expression", 3 * v, optional=True)
    mean_shape = shape[0].reshape(v, 3) + (expr[0].reshape(v, 3) if expr is not None else 0)
    if landmark_mapping is None:
        cands = sorted(path.parent.glob("ibug_to_bfm2017*.txt"))
        if not cands:
            raise FileNotFoundError(f"no iBUG-68 landmark mapping for {path}: pass landmark_mapping (eos format, "
                                    f"e.g. ibug_to_bfm2017-1_bfm_nomouth.txt) or put ibug_to_bfm2017*.txt beside it")
        landmark_mapping = cands[0]
    idx = read_landmark_mapping(landmark_mapping, v)
    scale = normalise_units(mean_shape, float(np.linalg.norm(mean_shape[idx[36]] - mean_shape[idx[45]]))
                            if idx[36] >= 0 and idx[45] >= 0 else float("nan"))
    mean_shape = mean_shape * scale
    tris = orient_outward(mean_shape, np.asarray(tris, np.int64))
    if contour is None:
        cands = sorted(path.parent.glob("*bfm2017*contours.json"))
        contour = cands[0] if cands else None
    chains = directions = None
    if contour is not None and idx[8] >= 0:
        chains, directions = jaw_contour_setup(mean_shape, idx, contour)
    ke = expr[1].shape[1] if expr is not None else 0
    return MorphableModel(
        name="bfm2017", mean_shape=mean_shape, shape_basis=shape[1], shape_std=shape[2] * scale,
        mean_color=color[0].reshape(v, 3), color_basis=color[1], color_std=color[2],
        expression_basis=expr[1] if expr is not None else np.zeros((3 * v, 0), np.float32),
        expression_std=expr[2] * scale if expr is not None else np.zeros(0, np.float32),
        triangles=tris, landmarks={"ibug68": idx}, expression_nonnegative=np.zeros(ke, bool),
        jaw_chains=chains, jaw_directions=directions)
