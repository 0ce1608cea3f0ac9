"""SFM (eos binary) and BFM2017 (h5) loaders; bad model files."""
import shutil
import struct

import h5py
import numpy as np
import pytest

from zoo.synth.bfm import load_bfm2017
from zoo.synth.generator import FaceGenerator, GeneratorConfig
from zoo.synth.landmarks import read_landmark_mapping
from zoo.synth.sfm import load_sfm


# ---- Surrey Face Model (../shared/data/sfm; skipped where absent) ----------------------------------------------
@pytest.fixture
def sfm_dir(shared_data):
    p = shared_data / "sfm"
    if not (p / "sfm_shape_3448.bin").exists():
        pytest.skip(f"{p}/sfm_shape_3448.bin is absent (the Surrey Face Model lives beside the repo only here)")
    return p


def _independent_sfm_header(path):
    """The first fields of the eos file parsed here by hand: version, mean rows/cols, first mean values."""
    raw = path.read_bytes()
    version, rows, cols = struct.unpack_from("<Iii", raw, 0)
    first = struct.unpack_from("<3f", raw, 12)
    return version, rows, cols, first


def test_sfm_loader(sfm_dir):
    m = load_sfm(sfm_dir)
    version, rows, cols, first = _independent_sfm_header(sfm_dir / "sfm_shape_3448.bin")
    assert (rows, cols) == (3 * 3448, 1) and m.num_vertices == 3448
    np.testing.assert_allclose(m.mean_shape[0], first, rtol=1e-6)  # SFM is in mm: no rescaling
    assert m.num_shape == 63 and len(m.triangles) == 6736
    np.testing.assert_allclose(m.shape_basis.T @ m.shape_basis, np.eye(63), atol=1e-4)
    assert m.expression_names == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    lm = m.landmark_indices("ibug68")
    assert lm[30] == 114 and lm[8] == 33 and lm[36] == 177 and lm[60] == -1  # "31 = 114" etc. in ibug_to_sfm.txt
    v = m.mean_shape
    assert v[lm[30], 2] > v[lm[36], 2] + 20  # nose tip towards the viewer (+z)
    assert 85 < np.linalg.norm(v[lm[36]] - v[lm[45]]) < 105
    assert m.mean_color.shape == (3448, 3) and m.num_color > 0  # colour from the built-in model
    g = FaceGenerator(m, GeneratorConfig(image_size=64))
    out, _ = g(0, 0, 0)
    assert out["visible"].sum() > 30 and not out["visible"][60]  # 61 (1-based) is not mapped in the SFM


def test_sfm_bad_files(sfm_dir, tmp_path):
    shutil.copy(sfm_dir / "ibug_to_sfm.txt", tmp_path / "ibug_to_sfm.txt")
    (tmp_path / "sfm_shape_3448.bin").write_bytes((sfm_dir / "sfm_shape_3448.bin").read_bytes()[:5000])
    with pytest.raises(ValueError, match="sfm_shape_3448.bin.*truncated"):
        load_sfm(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing does not exist"):
        load_sfm(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no sfm_shape_\\*.bin"):
        load_sfm(tmp_path / "empty")
    bad = tmp_path / "ibug_bad.txt"
    bad.write_text("[landmark_mappings]\n 9 = 33\n31 = 5000\n")
    with pytest.raises(ValueError, match="ibug_bad.txt:3: vertex 5000 outside the model's 3448 vertices"):
        load_sfm(sfm_dir, landmark_mapping=str(bad))


# ---- Basel Face Model 2017 layout, tiny file written here ----------------------------------------------------
def _tiny_bfm(path, n=12, drop=None):
    """A (n x n) height-field face patch in the BFM2017 h5 layout."""
    ys, xs = np.mgrid[0:n, 0:n]
    x = (xs - (n - 1) / 2) * 10.0
    y = ((n - 1) / 2 - ys) * 10.0
    z = 40 * np.exp(-(x ** 2 + y ** 2) / 60 ** 2)
    pts = np.stack([x, y, z], -1).reshape(-1, 3)
    v = len(pts)
    idx = np.arange(v).reshape(n, n)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    rng = np.random.default_rng(0)
    data = {}
    for group, k, mean in (("shape", 5, pts.ravel()), ("color", 4, np.full(3 * v, 0.6)), ("expression", 2, np.zeros(3 * v))):
        q, _ = np.linalg.qr(rng.normal(size=(3 * v, k)))
        data[f"{group}/model/mean"] = mean.astype(np.float32)
        data[f"{group}/model/pcaBasis"] = q.astype(np.float32)
        data[f"{group}/model/pcaVariance"] = np.linspace(4, 1, k).astype(np.float32)
    data["shape/representer/points"] = pts.T.astype(np.float32)
    data["shape/representer/cells"] = tris.T.astype(np.int32)
    with h5py.File(path, "w") as f:
        for key, val in data.items():
            if key != drop:
                f[key] = val
    return pts, tris, data


def _mapping(path, pairs):
    path.write_text("[landmark_mappings]\n" + "".join(f"{i} = {v}  # c\n" for i, v in pairs))


def test_bfm2017_loader_on_tiny_file(tmp_path):
    pts, tris, data = _tiny_bfm(tmp_path / "model2017-1_bfm_nomouth.h5")
    n = 12
    # eye corners, nose tip, chin, mouth corners (1-based iBUG numbers)
    _mapping(tmp_path / "ibug_to_bfm2017-1_bfm_nomouth.txt",
             [(37, 4 * n + 2), (46, 4 * n + 9), (31, 6 * n + 6), (9, 11 * n + 6), (49, 8 * n + 3), (55, 8 * n + 8)])
    m = load_bfm2017(tmp_path / "model2017-1_bfm_nomouth.h5")
    np.testing.assert_allclose(m.mean_shape, pts, rtol=1e-6)
    np.testing.assert_allclose(m.shape_std, np.sqrt(np.linspace(4, 1, 5)), rtol=1e-6)
    np.testing.assert_allclose(m.color_std, np.sqrt(np.linspace(4, 1, 4)), rtol=1e-6)
    assert m.num_expression == 2
    lm = m.landmark_indices("ibug68")
    assert lm[36] == 4 * n + 2 and lm[30] == 6 * n + 6 and lm[17] == -1
    # outward (towards the viewer) winding
    p0, p1, p2 = (m.mean_shape[m.triangles[:, i]] for i in range(3))
    assert (np.cross(p1 - p0, p2 - p0)[:, 2] > 0).mean() > 0.9
    out, _ = FaceGenerator(m, GeneratorConfig(image_size=48, yaw=(0, 0), pitch=(0, 0), roll=(0, 0)))(0, 0, 0)
    assert out["mask"].sum() > 100 and out["visible"][[36, 45, 30]].all() and not out["visible"][17]


def test_bfm2017_bad_files(tmp_path):
    _tiny_bfm(tmp_path / "m.h5", drop="shape/model/pcaBasis")
    _mapping(tmp_path / "ibug_to_bfm2017.txt", [(37, 10), (46, 20)])
    with pytest.raises(ValueError, match=r"m.h5: missing dataset '/shape/model/pcaBasis'"):
        load_bfm2017(tmp_path / "m.h5")
    _tiny_bfm(tmp_path / "ok.h5")
    _mapping(tmp_path / "wrong_count.txt", [(37, 10), (46, 144)])  # 144 vertices: 0..143
    with pytest.raises(ValueError, match="wrong_count.txt:3: vertex 144 outside the model's 144 vertices"):
        load_bfm2017(tmp_path / "ok.h5", landmark_mapping=str(tmp_path / "wrong_count.txt"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5: not a readable HDF5"):
        load_bfm2017(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        load_bfm2017(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "scaled.h5", "w") as f, h5py.File(tmp_path / "ok.h5", "r") as g:
        for key in ("shape/representer/points", "shape/representer/cells", "color/model/mean", "color/model/pcaBasis",
                    "color/model/pcaVariance", "shape/model/mean", "shape/model/pcaVariance"):
            f[key] = g[key][()]
        f["shape/model/pcaBasis"] = g["shape/model/pcaBasis"][()] * 3.0  # not orthonormal
    with pytest.raises(ValueError, match="pcaBasis columns must be orthonormal"):
        load_bfm2017(tmp_path / "scaled.h5", landmark_mapping=str(tmp_path / "ibug_to_bfm2017.txt"))


def test_mapping_parser_errors(tmp_path):
    f = tmp_path / "map.txt"
    f.write_text("[landmark_mappings]\n9 = x\n")
    with pytest.raises(ValueError, match="map.txt:2: landmark and vertex must be integers"):
        read_landmark_mapping(f, 100)
    f.write_text("[landmark_mappings]\n69 = 3\n")
    with pytest.raises(ValueError, match="map.txt:2: landmark 69 outside 1..68"):
        read_landmark_mapping(f, 100)
    f.write_text("[other]\n9 = 3\n")
    with pytest.raises(ValueError, match="no '\\[landmark_mappings\\]' entries"):
        read_landmark_mapping(f, 100)
