"""TripletLoss against brute-force loops and pytorch-metric-learning (PML)."""
from __future__ import annotations

import math
import os

import pytest
import torch

from zoo.losses import TripletLoss, build

ALPHA = 0.2


def _data(B=15, D=6, ids=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, ids, (B,), generator=g)
    emb = torch.randn(B, D, generator=g, dtype=dtype)
    return emb, labels


def _brute_dist(emb, kind, normalize=True):
    x = emb.tolist()
    if normalize:
        x = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in x]
    B = len(x)
    d = [[0.0] * B for _ in range(B)]
    for i in range(B):
        for j in range(B):
            if kind == "cosine":
                ni = math.sqrt(sum(u * u for u in x[i]))
                nj = math.sqrt(sum(u * u for u in x[j]))
                d[i][j] = 1 - sum(a * b for a, b in zip(x[i], x[j])) / (ni * nj)
            else:
                sq = sum((a - b) ** 2 for a, b in zip(x[i], x[j]))
                d[i][j] = sq if kind == "squared_euclidean" else math.sqrt(sq)
    return d


def _brute_triplets(d, labels, miner):
    B = len(labels)
    lab = labels.tolist()
    out = []
    for a in range(B):
        pos = [p for p in range(B) if p != a and lab[p] == lab[a]]
        neg = [n for n in range(B) if lab[n] != lab[a]]
        if miner == "batch_hard":
            if pos and neg:
                out.append((a, max(pos, key=lambda p: d[a][p]), min(neg, key=lambda n: d[a][n])))
            continue
        for p in pos:
            for n in neg:
                if miner == "batch_all" or d[a][p] < d[a][n] < d[a][p] + ALPHA:
                    out.append((a, p, n))
    return out


def brute_force(emb, labels, miner, kind="squared_euclidean", reduction="mean", nonzero=False):
    d = _brute_dist(emb, kind)
    trips = _brute_triplets(d, labels, miner)
    losses = [max(0.0, d[a][p] - d[a][n] + ALPHA) for a, p, n in trips]
    if reduction == "sum":
        return torch.tensor(sum(losses), dtype=torch.float64)
    if reduction == "mean":
        cnt = sum(1 for v in losses if v > 0) if nonzero else len(losses)
        return torch.tensor(sum(losses) / max(cnt, 1), dtype=torch.float64)
    per = []
    for i in range(len(labels)):
        mine = [v for (a, _, _), v in zip(trips, losses) if a == i]
        cnt = sum(1 for v in mine if v > 0) if nonzero else len(mine)
        per.append(sum(mine) / max(cnt, 1))
    return torch.tensor(per, dtype=torch.float64)


@pytest.mark.parametrize("miner", ["batch_all", "batch_hard", "semihard"])
@pytest.mark.parametrize("kind", ["squared_euclidean", "euclidean", "cosine"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_brute_force(miner, kind, reduction):
    emb, labels = _data()
    for nonzero in (False, True):
        ours = TripletLoss(margin=ALPHA, distance=kind, miner=miner, reduction=reduction,
                           average_nonzero=nonzero)(emb, labels)
        torch.testing.assert_close(ours, brute_force(emb, labels, miner, kind, reduction, nonzero))


def test_openface_random_loss_is_mean_over_its_triplets():
    """OpenFace train.lua, checked against a brute-force loop: one triplet per unordered anchor-positive pair
    that has a negative with d(a,n) - d(a,p) < alpha (none otherwise), the negative drawn uniformly among
    those, and the loss the mean over the triplets."""
    emb, labels = _data(B=20, ids=3)
    d = _brute_dist(emb, "squared_euclidean")
    lab = labels.tolist()
    candidates = {}
    for a in range(20):
        for p in range(a + 1, 20):
            if lab[a] == lab[p]:
                negs = [n for n in range(20) if lab[n] != lab[a] and d[a][n] - d[a][p] < ALPHA]
                if negs:
                    candidates[(a, p)] = negs
    assert candidates and any(len(v) > 1 for v in candidates.values())
    loss = TripletLoss(miner="openface_random")
    drawn = {pair: [] for pair in candidates}
    for seed in range(200):
        torch.manual_seed(seed)
        out = loss(emb, labels, return_info=True)
        trips = list(zip(out.anchors.tolist(), out.positives.tolist(), out.negatives.tolist()))
        assert sorted((a, p) for a, p, _ in trips) == sorted(candidates)  # each pair once, only valid pairs
        for a, p, n in trips:
            assert n in candidates[(a, p)]
            drawn[(a, p)].append(n)
        expected = sum(max(0.0, d[a][p] - d[a][n] + ALPHA) for a, p, n in trips) / len(trips)
        assert out.loss.item() == pytest.approx(expected, rel=1e-10)
        assert out.num_triplets == len(candidates)
    # uniform draw: Pearson chi-square over all pairs (a pair with k candidates expects 200 / k each) stays
    # within 5 sd of its degrees of freedom; always taking the first/closest candidate would be far beyond
    chi2, dof = 0.0, 0
    for pair, negs in candidates.items():
        e = 200 / len(negs)
        chi2 += sum((drawn[pair].count(n) - e) ** 2 / e for n in negs)
        dof += len(negs) - 1
    assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof)


@pytest.mark.parametrize("miner", ["batch_all", "batch_hard", "semihard", "openface_random"])
def test_gradcheck_float64(miner):
    emb, labels = _data(B=10, D=4, ids=3, seed=3)
    emb.requires_grad_()
    loss = TripletLoss(miner=miner, margin=0.5)

    def fn(e):
        torch.manual_seed(0)  # the random miner draws the same negatives at every evaluation
        return loss(e, labels)

    assert torch.autograd.gradcheck(fn, (emb,))


@pytest.mark.parametrize("miner", ["batch_all", "batch_hard", "semihard", "openface_random"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_single_identity_batch_gives_zero_loss_with_grad(miner, reduction):
    emb = torch.randn(6, 4, requires_grad=True)
    loss = TripletLoss(miner=miner, reduction=reduction)
    out = loss(emb, torch.full((6,), 3))
    assert out.grad_fn is not None and (out == 0).all() and torch.isfinite(out).all()
    assert out.shape == ((6,) if reduction == "none" else ())
    out.sum().backward()
    assert torch.isfinite(emb.grad).all() and (emb.grad == 0).all()
    assert loss(emb, torch.full((6,), 3), return_info=True).num_triplets == 0
    out = loss(emb, torch.arange(6), return_info=True)  # all different: no positive either
    assert out.num_triplets == 0 and (out.loss == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_finite(dtype):
    emb, labels = _data(B=30, D=16, ids=5, dtype=torch.float32)
    emb = (emb * 1e3).to(dtype).requires_grad_()
    for miner in ("batch_all", "batch_hard", "semihard", "openface_random"):
        out = TripletLoss(miner=miner)(emb, labels)
        assert torch.isfinite(out)
        out.backward()
        assert torch.isfinite(emb.grad.float()).all()


def test_identical_embeddings_euclidean_finite_grad():
    emb = torch.ones(6, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for kind in ("euclidean", "squared_euclidean", "cosine"):
        out = TripletLoss(distance=kind, miner="batch_all")(emb, labels)
        out.backward()
        assert out.item() == pytest.approx(ALPHA) and torch.isfinite(emb.grad).all()


# ---- pytorch-metric-learning -----------------------------------------------------------------------
try:
    from pytorch_metric_learning import distances, losses, miners, reducers
except ImportError:  # pragma: no cover - dev extra
    if os.environ.get("CI"):  # CI installs .[dev]: a missing reference must fail the run, not skip
        raise
    distances = losses = miners = reducers = None
needs_pml = pytest.mark.skipif(losses is None, reason="pytorch-metric-learning (dev extra) is not installed")


def _pml_distance(kind):
    if kind == "cosine":
        return distances.CosineSimilarity()
    return distances.LpDistance(normalize_embeddings=True, p=2, power=2 if kind == "squared_euclidean" else 1)


def _compare(ours_loss, pml_fn, emb, labels):
    e1 = emb.clone().requires_grad_()
    e2 = emb.clone().requires_grad_()
    a = ours_loss(e1, labels)
    b = pml_fn(e2, labels)
    torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-6, atol=1e-8)
    a.backward()
    b.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-5, atol=1e-8)


@needs_pml
@pytest.mark.parametrize("kind", ["squared_euclidean", "euclidean", "cosine"])
def test_pml_batch_hard(kind):
    emb, labels = _data(B=40, D=8, ids=6, seed=5)
    dist = _pml_distance(kind)
    miner = miners.BatchHardMiner(distance=dist)
    loss = losses.TripletMarginLoss(margin=ALPHA, distance=dist, reducer=reducers.MeanReducer())
    _compare(TripletLoss(distance=kind, miner="batch_hard"), lambda e, y: loss(e, y, miner(e, y)), emb, labels)


@needs_pml
@pytest.mark.parametrize("kind", ["squared_euclidean", "euclidean", "cosine"])
@pytest.mark.parametrize("nonzero", [False, True])
def test_pml_batch_all(kind, nonzero):
    emb, labels = _data(B=40, D=8, ids=6, seed=6)
    reducer = reducers.AvgNonZeroReducer() if nonzero else reducers.MeanReducer()
    loss = losses.TripletMarginLoss(margin=ALPHA, distance=_pml_distance(kind), reducer=reducer)
    _compare(TripletLoss(distance=kind, miner="batch_all", average_nonzero=nonzero), loss, emb, labels)


@needs_pml
@pytest.mark.parametrize("kind", ["squared_euclidean", "euclidean"])
def test_pml_semihard(kind):
    emb, labels = _data(B=40, D=8, ids=6, seed=7)
    dist = _pml_distance(kind)
    miner = miners.TripletMarginMiner(margin=ALPHA, type_of_triplets="semihard", distance=dist)
    loss = losses.TripletMarginLoss(margin=ALPHA, distance=dist, reducer=reducers.MeanReducer())
    ours = TripletLoss(distance=kind, miner="semihard")
    _compare(ours, lambda e, y: loss(e, y, miner(e, y)), emb, labels)
    assert ours(emb, labels, return_info=True).num_triplets == len(miner(emb, labels)[0]) > 0


def test_bad_inputs_and_registry():
    emb, labels = _data()
    loss = build("triplet", miner="batch_hard")
    assert isinstance(loss, TripletLoss) and loss.margin == 0.2 and loss.distance == "squared_euclidean"
    with pytest.raises(ValueError, match="labels"):
        loss(emb, labels[:-1])
    with pytest.raises(ValueError, match="labels"):
        loss(emb, labels.double())
    with pytest.raises(ValueError, match="embeddings"):
        loss(emb[0], labels)
    with pytest.raises(ValueError, match="embeddings"):
        loss(emb.index_fill(0, torch.tensor([1]), float("nan")), labels)
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(margin=-0.1)
    with pytest.raises(ValueError, match="miner"):
        TripletLoss(miner="hardest")
    with pytest.raises(ValueError, match="distance"):
        TripletLoss(distance="manhattan")
