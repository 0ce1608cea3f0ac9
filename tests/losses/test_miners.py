"""Triplet miners against brute-force enumeration (Python loops over all triplets)."""
from __future__ import annotations

import pytest
import torch

from zoo.losses.miners import MINERS, batch_all, batch_hard, openface_random, semihard

ALPHA = 0.2


def _setup(seed=0, B=14, ids=4):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, ids, (B,), generator=g)
    labels[0] = 99  # an identity with a single image: an anchor without positive
    x = torch.nn.functional.normalize(torch.randn(B, 3, generator=g, dtype=torch.float64), dim=1)
    dist = [[float(((x[i] - x[j]) ** 2).sum()) for j in range(B)] for i in range(B)]
    return torch.tensor(dist, dtype=torch.float64), labels


def _all(dist, labels, cond=lambda dap, dan: True):
    B = len(labels)
    out = set()
    for a in range(B):
        for p in range(B):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(B):
                if labels[n] != labels[a] and cond(float(dist[a, p]), float(dist[a, n])):
                    out.add((a, p, n))
    return out


def _as_set(trip):
    return set(zip(*(t.tolist() for t in trip)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_all_and_semihard(seed):
    dist, labels = _setup(seed)
    trip = batch_all(dist, labels, ALPHA)
    assert len(trip[0]) == len(_all(dist, labels)) and _as_set(trip) == _all(dist, labels)
    expected = _all(dist, labels, lambda dap, dan: dap < dan < dap + ALPHA)
    assert _as_set(semihard(dist, labels, ALPHA)) == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard(seed):
    dist, labels = _setup(seed)
    expected = set()
    B = len(labels)
    for a in range(B):
        pos = [p for p in range(B) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(B) if labels[n] != labels[a]]
        if pos and neg:
            expected.add((a, max(pos, key=lambda p: dist[a, p]), min(neg, key=lambda n: dist[a, n])))
    assert _as_set(batch_hard(dist, labels, ALPHA)) == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_openface_random_selects_one_in_margin_negative_per_pair(seed):
    dist, labels = _setup(seed)
    torch.manual_seed(seed)
    a, p, n = openface_random(dist, labels, ALPHA)
    B = len(labels)
    pairs_with_candidates = set()
    for i in range(B):
        for j in range(i + 1, B):
            if labels[i] == labels[j] and any(labels[k] != labels[i] and dist[i, k] - dist[i, j] < ALPHA
                                              for k in range(B)):
                pairs_with_candidates.add((i, j))
    assert sorted(zip(a.tolist(), p.tolist())) == sorted(pairs_with_candidates)
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        assert labels[ni] != labels[ai] and dist[ai, ni] - dist[ai, pi] < ALPHA


def test_openface_random_is_uniform_over_candidates():
    # pair (0, 1) with d_ap = 0.5; negatives 2, 3 are within the margin (d_an - d_ap = -0.05, 0.1), 4 is not (0.25)
    dist = torch.tensor([[0.0, 0.5, 0.45, 0.6, 0.75], [0.5, 0, 1, 1, 1], [0.45, 1, 0, 1, 1],
                         [0.6, 1, 1, 0, 1], [0.75, 1, 1, 1, 0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 2, 3])
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(5)
    for _ in range(600):
        a, p, n = openface_random(dist, labels, ALPHA, generator=g)
        assert a.tolist() == [0] and p.tolist() == [1]
        counts[n] += 1
    assert counts[0] == counts[1] == counts[4] == 0
    assert 240 < counts[2] < 360 and 240 < counts[3] < 360


def test_single_identity_and_registry():
    dist, _ = _setup()
    labels = torch.zeros(len(dist), dtype=torch.long)
    for name, miner in MINERS.items():
        a, p, n = miner(dist, labels, ALPHA)
        assert a.numel() == p.numel() == n.numel() == 0, name
    assert set(MINERS) == {"batch_all", "batch_hard", "semihard", "openface_random"}
