import numpy as np

from zoo.synth.render import render, vertex_normals


def _brute(uv, depth, colors, tris, h, w, cull=True):
    img = np.zeros((h, w, colors.shape[1]))
    z = np.full((h, w), np.inf)
    for t in tris:
        p = uv[t]
        area = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[2, 0] - p[0, 0]) * (p[1, 1] - p[0, 1])
        if area == 0 or (cull and area >= 0):
            continue
        for y in range(h):
            for x in range(w):
                l = []
                for i in range(3):
                    a, b = p[(i + 1) % 3], p[(i + 2) % 3]
                    l.append(((a[0] - x) * (b[1] - y) - (b[0] - x) * (a[1] - y)) / area)
                if min(l) < -1e-9:
                    continue
                d = sum(li * depth[ti] for li, ti in zip(l, t))
                if d < z[y, x]:
                    z[y, x] = d
                    img[y, x] = sum(li * colors[ti] for li, ti in zip(l, t))
    return img, z


def test_rasterizer_matches_brute_force():
    rng = np.random.default_rng(0)
    uv = rng.uniform(-3, 24, (12, 2))
    depth = rng.uniform(1, 5, 12)
    colors = rng.random((12, 3))
    tris = rng.integers(0, 12, (10, 3)).astype(np.int32)
    tris = tris[(tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])]
    for cull in (True, False):
        img, z = render(uv, depth, colors, tris, np.zeros((21, 21, 3), np.float32), cull=cull)
        ref_img, ref_z = _brute(uv, depth, colors, tris, 21, 21, cull)
        covered = np.isfinite(ref_z)
        # pixel centres exactly on an edge may go either way in float32: allow a handful of them
        assert (np.isfinite(z) != covered).sum() <= 3
        both = covered & np.isfinite(z)
        np.testing.assert_allclose(z[both], ref_z[both], rtol=1e-4)
        assert (np.abs(img[both] - ref_img[both]) < 1e-3).mean() > 0.98


def test_depth_order_and_background():
    # two squares (two triangles each, counter-clockwise seen by the camera: y down on screen), near one red
    def square(x0, y0, x1, y1):
        return np.array([[x0, y1], [x1, y1], [x1, y0], [x0, y0]], np.float32)

    uv = np.concatenate([square(2, 2, 12, 12), square(6, 6, 16, 16)])
    depth = np.array([5, 5, 5, 5, 2, 2, 2, 2], np.float32)
    colors = np.array([[0, 0, 1]] * 4 + [[1, 0, 0]] * 4, np.float32)
    tris = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], np.int32)
    bg = np.full((20, 20, 3), 0.5, np.float32)
    img, z = render(uv, depth, colors, tris, bg)
    np.testing.assert_allclose(img[4, 4], [0, 0, 1])  # far square only
    np.testing.assert_allclose(img[10, 10], [1, 0, 0])  # overlap: near square wins
    np.testing.assert_allclose(img[18, 1], [0.5, 0.5, 0.5])  # background kept
    assert z[10, 10] == 2 and np.isinf(z[18, 1])
    # reversed winding = back faces: culled
    img2, z2 = render(uv, depth, colors, tris[:, ::-1].copy(), bg)
    assert np.isinf(z2).all()


def test_vertex_normals_of_a_plane_and_a_tetrahedron():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    np.testing.assert_allclose(vertex_normals(v, np.array([[0, 1, 2]], np.int32)), [[0, 0, 1]] * 3, atol=1e-6)
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], np.float32)
    tris = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]], np.int32)
    n = vertex_normals(v, tris)
    # regular tetrahedron centred at 0: outward vertex normals are the vertex directions
    np.testing.assert_allclose(n, v / np.sqrt(3), atol=1e-5)
