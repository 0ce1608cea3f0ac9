"""TripletLoss against brute-force loops and pytorch-metric-learning (PML)."""
from __future__ import annotations

import math

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
    emb, labels = _data(B=20, ids=3)
    loss = TripletLoss(miner="openface_random")
    torch.manual_seed(0)
    value = loss(emb, labels)
    a, p, n = loss.last_triplets
    d = _brute_dist(emb, "squared_euclidean")
    expected = sum(max(0.0, d[i][j] - d[i][k] + ALPHA) for i, j, k in zip(a.tolist(), p.tolist(), n.tolist()))
    assert loss.last_num_triplets == len(a) > 0
    assert value.item() == pytest.approx(expected / len(a), rel=1e-10)


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
    assert loss.num_empty_batches == 1 and loss.last_num_triplets == 0
    loss(emb, torch.arange(6))  # all different: no positive either
    assert loss.num_empty_batches == 2


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
    assert ours.last_num_triplets == len(miner(emb, labels)[0]) > 0


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
