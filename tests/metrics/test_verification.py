"""Verification metrics: hand-computed toy cases, sklearn/scipy references, flip TTA, templates, DDP cat states."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo.metrics.verification import (VerificationMetrics, best_threshold, equal_error_rate, flip_fuse,
                                      kfold_accuracy, roc, roc_auc, tar_at_far, template_similarity,
                                      verification_report)


# ---------------------------------------------------------------------------------------------- hand-computed
def test_toy_roc_auc_eer_tar():
    # genuine 0.9, 0.6; impostor 0.7, 0.2. ROC points (fpr, tpr): (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    s, y = [0.9, 0.6, 0.7, 0.2], [True, True, False, False]
    fpr, tpr, thr = roc(s, y)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr[1:], [0.9, 0.7, 0.6, 0.2])
    assert roc_auc(fpr, tpr) == pytest.approx(0.75)  # 3 of 4 genuine/impostor orderings correct
    assert equal_error_rate(fpr, tpr)[0] == pytest.approx(0.5)
    assert tar_at_far(fpr, tpr, 0.1) == pytest.approx(0.5)
    assert tar_at_far(fpr, tpr, 0.5) == pytest.approx(1.0)


def test_eer_interpolates_on_tied_segment():
    # genuine 0.9, 0.5; impostor 0.5, 0.1: the tie makes the segment (0,.5)->(.5,1); tpr = .5 + f meets 1 - f at .25
    fpr, tpr, _ = roc([0.9, 0.5, 0.5, 0.1], [True, True, False, False])
    assert equal_error_rate(fpr, tpr)[0] == pytest.approx(0.25)


def test_kfold_accuracy_hand_case():
    # fold 0: genuine .9 .8, impostor .3 .2 -> best threshold .55 (acc 1), applied to fold 1 gives 3/4.
    # fold 1: genuine .6 .55, impostor .7 .1 -> best threshold .325 (acc 3/4), applied to fold 0 gives 1.
    s = [0.9, 0.8, 0.3, 0.2, 0.6, 0.55, 0.7, 0.1]
    y = [1, 1, 0, 0, 1, 1, 0, 0]
    f = [0, 0, 0, 0, 1, 1, 1, 1]
    mean, std, accs, thrs = kfold_accuracy(s, y, f)
    np.testing.assert_allclose(accs, [1.0, 0.75])
    np.testing.assert_allclose(thrs, [0.325, 0.55])
    assert mean == pytest.approx(0.875) and std == pytest.approx(0.125)


def test_best_threshold_lowest_among_ties():
    # scores .2(i) .4(g) .6(i) .8(g): thresholds .3 and .7 both give 3/4; the lower is taken
    t, acc = best_threshold([0.2, 0.4, 0.6, 0.8], [False, True, False, True])
    assert (t, acc) == (pytest.approx(0.3), pytest.approx(0.75))


def _brute_kfold(s, y, f):
    """Reference: loop over every fold and every candidate threshold explicitly."""
    accs = []
    for k in sorted(set(f)):
        tr = [i for i in range(len(s)) if f[i] != k]
        te = [i for i in range(len(s)) if f[i] == k]
        u = sorted(set(s[i] for i in tr))
        cands = [u[0] - 1] + [(a + b) / 2 for a, b in zip(u[:-1], u[1:])] + [u[-1] + 1]
        best_t, best_a = None, -1.0
        for t in cands:  # ascending: strict > keeps the lowest among ties
            a = sum((s[i] >= t) == y[i] for i in tr) / len(tr)
            if a > best_a:
                best_t, best_a = t, a
        accs.append(sum((s[i] >= best_t) == y[i] for i in te) / len(te))
    return float(np.mean(accs)), float(np.std(accs))


def test_kfold_against_brute_force():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(60, bool), np.zeros(60, bool)]
    s = np.round(np.where(y, rng.normal(0.5, 0.2, 120), rng.normal(0.1, 0.2, 120)), 2)  # rounding makes ties
    f = np.r_[np.repeat(np.arange(10), 6), np.repeat(np.arange(10), 6)]
    mean, std, _, _ = kfold_accuracy(s, y, f)
    ref = _brute_kfold(s.tolist(), y.tolist(), f.tolist())
    assert (mean, std) == (pytest.approx(ref[0]), pytest.approx(ref[1]))


# ---------------------------------------------------------------------------------------------- sklearn / scipy
def test_against_sklearn_and_scipy():
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.5
    s = np.round(np.where(y, rng.normal(0.6, 0.25, 500), rng.normal(0.2, 0.25, 500)), 2)
    fpr, tpr, thr = roc(s, y)
    sf, st, sthr = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf)
    np.testing.assert_allclose(tpr, st)
    np.testing.assert_allclose(thr[1:], sthr[1:])
    assert roc_auc(fpr, tpr) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    ref_eer = brentq(lambda x: 1.0 - x - interp1d(sf, st)(x), 0.0, 1.0)
    assert equal_error_rate(fpr, tpr)[0] == pytest.approx(ref_eer, abs=1e-9)
    for far in (0.1, 0.01):
        assert tar_at_far(fpr, tpr, far) == pytest.approx(max(t for f_, t in zip(sf, st) if f_ <= far))


# ---------------------------------------------------------------------------------------------- torchmetrics
def _toy_embeddings(n_ids=6, per=5, dim=8, noise=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_ids, dim, generator=g)
    ids = torch.arange(n_ids).repeat_interleave(per)
    emb = centres[ids] + noise * torch.randn(len(ids), dim, generator=g)
    return emb, ids, torch.arange(len(ids))


def test_metric_with_pair_list_matches_manual_scores():
    emb, ids, idx = _toy_embeddings()
    pairs = [(i, j, bool(ids[i] == ids[j])) for i in range(30) for j in range(i + 1, 30) if (i * 7 + j) % 5 == 0]
    m = VerificationMetrics(pairs=pairs, folds=5)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(1))  # update order must not matter
    for chunk in perm.split(7):
        m.update(emb[chunk], ids[chunk], idx[chunk])
    out = m.compute()
    e = emb.double().numpy()
    manual = [float(e[i] @ e[j] / np.linalg.norm(e[i]) / np.linalg.norm(e[j])) for i, j, _ in pairs]
    same = [p[2] for p in pairs]
    from zoo.metrics.pairs import assign_folds

    ref = verification_report(manual, same, assign_folds(same, 5))
    for k, v in ref.items():
        assert float(out[k]) == pytest.approx(v, abs=1e-6), k
    assert set(out) >= {"accuracy", "accuracy_std", "auc", "eer", "tar@far=0.1", "tar@far=0.01", "tar@far=0.001"}
    figs = m.figures()
    assert set(figs) == {"roc", "scores"}
    figs["roc"].savefig(os.devnull, format="png")


def test_metric_generated_pairs_and_errors():
    emb, ids, idx = _toy_embeddings(n_ids=8, per=6)
    m = VerificationMetrics(pairs=None, num_pairs=100, folds=10, seed=0)
    m.update(emb, ids, idx)
    out = m.compute()
    assert float(out["num_pairs"]) == 100 and 0.5 < float(out["auc"]) <= 1
    sc = m.last_scores
    assert sc["same"].sum() == 50
    np.testing.assert_array_equal(ids.numpy()[sc["i"]] == ids.numpy()[sc["j"]], sc["same"])

    with pytest.warns(UserWarning), pytest.raises(ValueError, match="before any update"):
        VerificationMetrics().compute()
    bad = VerificationMetrics(pairs=[(0, 99, False)] * 10 + [(0, 1, True)] * 10)
    bad.update(emb, ids, idx)
    with pytest.raises(ValueError, match="index 99"):
        bad.compute()
    wrong = VerificationMetrics(pairs=[(0, 1, False)] * 10 + [(0, 7, True)] * 10)  # 0 and 1 share identity 0
    wrong.update(emb, ids, idx)
    with pytest.raises(ValueError, match="marked same=False"):
        wrong.compute()
    with pytest.raises(ValueError, match="flip_tta=True"):
        VerificationMetrics().update(emb, ids, idx, embeddings_flipped=emb)


def test_flip_tta_is_normalised_sum():
    emb, ids, idx = _toy_embeddings()
    flipped = emb + 0.3 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(5))
    a = VerificationMetrics(num_pairs=120, folds=5, flip_tta=True)
    a.update(emb, ids, idx, embeddings_flipped=flipped)
    b = VerificationMetrics(num_pairs=120, folds=5)
    fused = (emb + flipped) / (emb + flipped).norm(dim=1, keepdim=True)
    b.update(fused, ids, idx)
    ra, rb = a.compute(), b.compute()
    for k in ra:
        assert float(ra[k]) == pytest.approx(float(rb[k]), abs=1e-6)
    torch.testing.assert_close(flip_fuse(emb, flipped), fused)


def test_template_similarity():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s = [1.0, 2 ** -0.5, 0.0, 2 ** -0.5]  # cosines of (a0,b0) (a0,b1) (a1,b0) (a1,b1)
    assert float(template_similarity(a, b, 0.0)) == pytest.approx(np.mean(s), abs=1e-6)
    w = np.exp(10 * np.array(s))
    assert float(template_similarity(a, b, 10.0)) == pytest.approx(float((w * s).sum() / w.sum()), abs=1e-6)
    assert float(template_similarity(a, b, 1e4)) == pytest.approx(1.0, abs=1e-5)  # beta -> inf: max
    ref = np.mean([float(template_similarity(a, b, float(k))) for k in range(21)])
    assert float(template_similarity(a, b)) == pytest.approx(ref, abs=1e-6)  # default: mean over beta 0..20
    with pytest.raises(ValueError, match="non-empty"):
        template_similarity(a, torch.zeros(0, 2))


# ---------------------------------------------------------------------------------------------- DDP
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out_dir, pairs):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        emb, ids, idx = _toy_embeddings(n_ids=8, per=6)
        # DistributedSampler-style split with padding: rank 1 repeats sample 0, as DistributedSampler pads
        part = torch.arange(rank, len(ids), world)
        if rank == 1:
            part = torch.cat([part, torch.tensor([0])])
        res = {}
        for name, p in (("given", pairs), ("generated", None)):
            m = VerificationMetrics(pairs=p, num_pairs=120, folds=10)
            for chunk in part.split(5):
                m.update(emb[chunk], ids[chunk], idx[chunk])
            res[name] = {k: float(v) for k, v in m.compute().items()}
        torch.save(res, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_ddp_cat_states_equal_single_process(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    # the spawned processes import this module by its name (tests.metrics... under --import-mode=importlib)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    emb, ids, idx = _toy_embeddings(n_ids=8, per=6)
    pairs = [(i, j, bool(ids[i] == ids[j])) for i in range(48) for j in range(i + 1, 48) if (3 * i + j) % 4 == 0]
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), pairs), nprocs=2, join=True)
    ref = {}
    for name, p in (("given", pairs), ("generated", None)):
        m = VerificationMetrics(pairs=p, num_pairs=120, folds=10)
        m.update(emb, ids, idx)
        ref[name] = {k: float(v) for k, v in m.compute().items()}
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for name in ref:
            for k, v in ref[name].items():
                assert got[name][k] == pytest.approx(v, abs=1e-6), (rank, name, k)
