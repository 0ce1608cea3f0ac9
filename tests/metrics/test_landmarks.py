"""LandmarkMetrics vs hand-computed toy cases, brute-force loops and scipy; DDP cat-state correctness."""
from __future__ import annotations

import math
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from zoo.metrics.landmarks import LandmarkMetrics, hash_uniform, rankdata
from zoo.schemes import get_scheme

IB = get_scheme("ibug68")


def _face(scale=1.0, shift=(0.0, 0.0)):
    """A 68-point face: outer eye corners 36 = (0, 0) and 45 = (10, 0) times scale, others on a grid."""
    g = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(8.0), indexing="ij"), -1).reshape(-1, 2)[:68]
    t = g.clone()
    t[36] = torch.tensor([0.0, 0.0])
    t[45] = torch.tensor([10.0, 0.0])
    return t * scale + torch.tensor(shift)


def test_nme_inter_ocular_hand_computed():
    t = torch.stack([_face(), _face(2.0)])  # inter-ocular 10 and 20
    p = t + torch.tensor([3.0, 4.0])  # every landmark 5 px off
    m = LandmarkMetrics("ibug68")
    m.update(p, t, torch.ones(2, 68, dtype=torch.bool), torch.ones(2))
    r = m.compute()
    assert r["nme"] == pytest.approx((0.5 + 0.25) / 2)
    assert r["num_faces"] == 2


def test_nme_inter_pupil_box_and_given():
    t = _face().unsqueeze(0)
    t[0, 36:42] = torch.tensor([[0.0, 0.0], [2.0, 1.0], [4.0, 1.0], [6.0, 0.0], [4.0, -1.0], [2.0, -1.0]])
    t[0, 42:48] = t[0, 36:42] + torch.tensor([20.0, 6.0])  # eye centres (3, 0) and (23, 6)
    p = t + torch.tensor([0.0, 2.0])
    vis = torch.ones(1, 68, dtype=torch.bool)
    m = LandmarkMetrics("ibug68", normalization="inter_pupil")
    m.update(p, t, vis, None)
    assert m.compute()["nme"] == pytest.approx(2.0 / math.hypot(20.0, 6.0))
    # box: sqrt(w * h) of the visible landmarks' box
    lo, hi = t[0].min(0).values, t[0].max(0).values
    box = LandmarkMetrics(normalization="box")
    box.update(p, t, vis)
    assert box.compute()["nme"] == pytest.approx(2.0 / math.sqrt(float((hi - lo).prod())))
    given = LandmarkMetrics(normalization="given")
    given.update(p, t, vis, torch.tensor([4.0]))
    assert given.compute()["nme"] == pytest.approx(0.5)


def test_invisible_landmarks_are_ignored():
    t = _face().unsqueeze(0).repeat(2, 1, 1)
    p = t.clone()
    p[:, 0] += torch.tensor([6.0, 8.0])  # 10 px off on landmark 0 only
    p[1, 5] = torch.tensor([math.nan, math.nan])  # garbage where invisible
    vis = torch.ones(2, 68, dtype=torch.bool)
    vis[1, 0] = False
    vis[1, 5] = False
    m = LandmarkMetrics("ibug68")
    m.update(p, t, vis, None)
    assert m.compute()["nme"] == pytest.approx((1.0 / 68 + 0.0) / 2)


def test_failure_rate_and_auc_vs_brute_force_ced():
    e = np.array([0.02, 0.05, 0.09, 0.2, 0.079, 0.081])
    t = _face().unsqueeze(0).repeat(len(e), 1, 1)
    p = t + torch.tensor([1.0, 0.0])  # 1 px error everywhere; 'given' norm sets the NME to e
    m = LandmarkMetrics(normalization="given")
    m.update(p, t, None, torch.tensor(1.0 / e))
    r = m.compute()
    assert r["nme"] == pytest.approx(e.mean())
    for thr in (0.08, 0.10):
        assert r[f"fr@{thr:.2f}"] == pytest.approx(np.mean(e > thr))
        x = np.linspace(0, thr, 400_001)  # fine grid integration of the CED
        ced = (e[None, :] <= x[:, None]).mean(1)
        assert r[f"auc@{thr:.2f}"] == pytest.approx(np.trapezoid(ced, x) / thr, abs=1e-4)
    assert r["auc@0.08"] == pytest.approx((0.06 + 0.03 + 0.001) / 6 / 0.08)


def test_accuracy_at_fraction_of_box_diagonal():
    t = torch.zeros(1, 68, 2)
    t[0, :, 0] = torch.linspace(0, 30, 68)
    t[0, :, 1] = torch.linspace(0, 40, 68)  # box 30 x 40: diagonal 50
    err = torch.zeros(68)
    err[:10] = 1.0  # 2% of the diagonal
    err[10:20] = 2.0  # 4%
    err[20:25] = 3.0  # 6%
    p = t.clone()
    p[0, :, 0] += err
    m = LandmarkMetrics(normalization="box")
    m.update(p, t)
    r = m.compute()
    assert r["acc@0.03"] == pytest.approx((68 - 25 + 10) / 68)
    assert r["acc@0.05"] == pytest.approx((68 - 5) / 68)


def _random_batch(n, seed, L=68, invisible=0.1):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, L, 2, generator=g) * 80 + 10
    t[:, 36] = torch.tensor([20.0, 30.0]) + torch.rand(n, 2, generator=g)
    t[:, 45] = torch.tensor([60.0, 30.0]) + torch.rand(n, 2, generator=g)
    err = torch.rand(n, L, 2, generator=g) * 6 - 3
    p = t + err
    vis = torch.rand(n, L, generator=g) > invisible
    vis[:, [36, 45]] = True
    # a validation signal correlated with the error, with ties
    val = torch.round(err.abs().sum(-1) + torch.rand(n, L, generator=g) * 2)
    idx = torch.arange(n) + 1000 * seed
    return p, t, vis, val, idx


def _brute_discard(p, t, vis, scores, frac, norm):
    faces = []
    for i in range(len(p)):
        items = [(float(scores[i, l]), l) for l in range(p.shape[1]) if vis[i, l]]
        m = len(items)
        k = min(int(math.floor(frac * m + 0.5)), m - 1)
        # highest score first; ties: lower landmark index first
        dropped = {l for _, l in sorted(items, key=lambda x: (-x[0], x[1]))[:k]}
        kept = [l for _, l in items if l not in dropped]
        faces.append(sum(float(torch.linalg.norm(p[i, l] - t[i, l])) / norm[i] for l in kept) / len(kept))
    return float(np.mean(faces))


def test_discard_and_correlations_vs_brute_force_and_scipy():
    from scipy import stats  # imported here: the DDP workers import this module

    p, t, vis, val, idx = _random_batch(12, seed=1)
    m = LandmarkMetrics("ibug68", seed=7)
    m.update(p[:5], t[:5], vis[:5], None, validation=val[:5], index=idx[:5])
    m.update(p[5:], t[5:], vis[5:], None, validation=val[5:], index=idx[5:])
    r = m.compute()
    norm = [float(torch.linalg.norm(t[i, 36] - t[i, 45])) for i in range(len(t))]
    rnd = hash_uniform(idx.numpy(), 68, 7)
    for f in (0.1, 0.2, 0.3):
        pct = int(round(f * 100))
        assert r[f"nme_discard{pct}_val"] == pytest.approx(_brute_discard(p, t, vis, val, f, norm))
        assert r[f"nme_discard{pct}_random"] == pytest.approx(_brute_discard(p, t, vis, rnd, f, norm))
    assert r["nme_discard30_val"] < r["nme_discard30_random"]  # the signal is informative here
    err = torch.linalg.norm(p - t, dim=-1)[vis].numpy()
    v = val[vis].numpy()
    assert r["spearman"] == pytest.approx(stats.spearmanr(v, err).statistic)
    assert r["pearson"] == pytest.approx(stats.pearsonr(v, err).statistic)
    np.testing.assert_allclose(rankdata(v), stats.rankdata(v))


def test_random_discard_baseline_without_validation_signal():
    # seed 002 Table 5: the NON model (no validation head) gets the random-discard baseline only
    p, t, vis, _, idx = _random_batch(8, seed=9)
    m = LandmarkMetrics("ibug68", seed=3)
    m.update(p, t, vis, None, index=idx)
    r = m.compute()
    norm = [float(torch.linalg.norm(t[i, 36] - t[i, 45])) for i in range(len(t))]
    rnd = hash_uniform(idx.numpy(), 68, 3)
    for f in (0.1, 0.2, 0.3):
        pct = int(round(f * 100))
        assert r[f"nme_discard{pct}_random"] == pytest.approx(_brute_discard(p, t, vis, rnd, f, norm))
        assert f"nme_discard{pct}_val" not in r
    assert "spearman" not in r and "pearson" not in r


def test_random_discard_does_not_depend_on_update_order():
    p, t, vis, val, idx = _random_batch(10, seed=2)
    a, b = LandmarkMetrics("ibug68"), LandmarkMetrics("ibug68")
    a.update(p, t, vis, None, validation=val, index=idx)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    b.update(p[perm], t[perm], vis[perm], None, validation=val[perm], index=idx[perm])
    ra, rb = a.compute(), b.compute()
    assert ra.keys() == rb.keys()
    for k in ra:
        assert ra[k] == pytest.approx(rb[k]), k


def test_per_subset_values_and_duplicate_indices():
    p, t, vis, val, idx = _random_batch(9, seed=3)
    sub = ["common", "challenging", "common", "common", "challenging", "common", "challenging", "common", "common"]
    m = LandmarkMetrics("ibug68", subset_names=["common", "challenging"])
    m.update(p, t, vis, None, validation=val, subset=sub, index=idx)
    m.update(p[:2], t[:2], vis[:2], None, validation=val[:2], subset=sub[:2], index=idx[:2])  # padding repeats
    r = m.compute()
    assert r["num_faces"] == 9
    for name in ("common", "challenging"):
        sel = [i for i, s in enumerate(sub) if s == name]
        ref = LandmarkMetrics("ibug68")
        ref.update(p[sel], t[sel], vis[sel], None, validation=val[sel], index=idx[sel])
        for k, v in ref.compute().items():
            assert r[f"{k}/{name}"] == pytest.approx(v, nan_ok=True), k


def test_bad_input():
    p, t, vis, val, idx = _random_batch(3, seed=4)
    with pytest.raises(ValueError, match="normalization"):
        LandmarkMetrics("ibug68", normalization="eyes")
    with pytest.raises(ValueError, match="needs a landmark scheme"):
        LandmarkMetrics()
    with pytest.raises(ValueError, match="discard"):
        LandmarkMetrics("ibug68", discard=(0.1, 1.0))
    m = LandmarkMetrics("ibug68")
    with pytest.raises(ValueError, match="has 68 landmarks"):
        m.update(p[:, :60], t[:, :60])
    bad = t.clone()
    bad[1, 3, 0] = math.nan
    with pytest.raises(ValueError, match=r"target has NaN/inf at visible landmarks of batch samples \[1\]"):
        m.update(p, bad, vis)
    v2 = vis.clone()
    v2[2, 45] = False
    with pytest.raises(ValueError, match=r"eye points \[36, 45\] visible; batch samples \[2\]"):
        m.update(p, t, v2)
    with pytest.raises(ValueError, match="needs 'norm'"):
        LandmarkMetrics(normalization="given").update(p, t, vis)
    with pytest.raises(ValueError, match="positive finite"):
        LandmarkMetrics(normalization="given").update(p, t, vis, torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="subset_names"):
        m.update(p, t, vis, subset=["a", "b", "a"])
    m.update(p, t, vis, validation=val)
    m.update(p, t, vis)
    with pytest.raises(ValueError, match="some updates and not for others"):
        m.compute()


def test_faces_without_visible_landmarks_are_counted_not_averaged():
    p, t, vis, _, _ = _random_batch(3, seed=5)
    vis[1] = False
    m = LandmarkMetrics("ibug68")
    m.update(p, t, vis)
    ref = LandmarkMetrics("ibug68")
    ref.update(p[[0, 2]], t[[0, 2]], vis[[0, 2]])
    r = m.compute()
    assert r["num_faces"] == 2 and r["num_faces_no_visible"] == 1
    assert r["nme"] == pytest.approx(ref.compute()["nme"])


def test_plots_return_figures():
    from matplotlib.figure import Figure

    from zoo.metrics.landmarks import ced_figure, sample_figure, validation_figure

    p, t, vis, val, idx = _random_batch(4, seed=6)
    m = LandmarkMetrics("ibug68")
    m.update(p, t, vis, validation=val, index=idx)
    v = m.values()
    figs = [ced_figure({"model": v["nme_face"]}), validation_figure(v["err_px"], v["validation"], v["visible"]),
            sample_figure(torch.rand(1, 96, 96), p[0], val[0], t[0]), m.plot_ced(), m.plot_validation()]
    assert all(isinstance(f, Figure) for f in figs)
    figs[1].canvas.draw()
    ax = figs[1].axes[0]
    red = ax.lines[1].get_ydata()
    assert np.all(np.diff(red) >= 0) and red[0] == 0 and red[-1] == 1  # sorted ascending, min-max scaled


def test_import_pulls_no_lightning_hydra_wandb():
    code = ("import sys, zoo.metrics, zoo.metrics.landmarks, zoo.metrics.verification; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'hydra', "
            "'wandb', 'omegaconf')); print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


# ---- DDP: two gloo processes each with half the data == one process with all -------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        p, t, vis, val, idx = _random_batch(11, seed=8)
        sub = torch.arange(11) % 3
        sel = torch.arange(rank, 11, 2)  # interleaved shards of unequal size (6 and 5), like a DistributedSampler
        m = LandmarkMetrics("ibug68")
        m.update(p[sel], t[sel], vis[sel], None, validation=val[sel], subset=sub[sel], index=idx[sel])
        torch.save(m.compute(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_ddp_cat_states_equal_single_process(tmp_path):
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    p, t, vis, val, idx = _random_batch(11, seed=8)
    ref = LandmarkMetrics("ibug68")
    ref.update(p, t, vis, None, validation=val, subset=torch.arange(11) % 3, index=idx)
    want = ref.compute()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], nan_ok=True), k


def test_multilabel_subset_flags_equal_metrics_on_each_subset():
    # WFLW attributes: a face belongs to every subset whose flag is set
    p, t, vis, val, idx = _random_batch(9, seed=11)
    flags = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1], [1, 1], [1, 0], [0, 0]])
    m = LandmarkMetrics("ibug68", subset_names=["pose", "blur"])
    m.update(p[:4], t[:4], vis[:4], None, validation=val[:4], subset=flags[:4], index=idx[:4])
    m.update(p[4:], t[4:], vis[4:], None, validation=val[4:], subset=flags[4:], index=idx[4:])
    r = m.compute()
    for col, name in enumerate(["pose", "blur"]):
        sel = flags[:, col].bool()
        ref = LandmarkMetrics("ibug68")
        ref.update(p[sel], t[sel], vis[sel], None, validation=val[sel], index=idx[sel])
        for k, v in ref.compute().items():
            assert r[f"{k}/{name}"] == pytest.approx(v, nan_ok=True), (k, name)
    with pytest.raises(ValueError, match="subset flags"):
        LandmarkMetrics("ibug68", subset_names=["pose"]).update(p[:2], t[:2], subset=flags[:2])
