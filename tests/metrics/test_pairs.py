"""Seeded balanced pair generation and the LFW fold rule, against brute-force enumeration."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from zoo.metrics.pairs import _triangle_decode, assign_folds, generate_pairs


def test_triangle_decode_matches_combinations():
    for n in (2, 3, 7, 50):
        t = np.arange(n * (n - 1) // 2)
        a, b = _triangle_decode(t, np.full(t.size, n))
        assert list(zip(a.tolist(), b.tolist())) == list(itertools.combinations(range(n), 2))


def test_generated_pairs_are_valid_balanced_distinct_and_seeded():
    labels = np.repeat(np.arange(30), np.random.default_rng(0).integers(1, 9, 30))
    pairs = generate_pairs(labels, num_pairs=400, seed=1, folds=10)
    same = [s for _, _, s in pairs]
    assert len(pairs) == 400 and sum(same) == 200
    assert all(i < j for i, j, _ in pairs)
    assert len({(i, j) for i, j, _ in pairs}) == 400
    assert all((labels[i] == labels[j]) == s for i, j, s in pairs)
    # LFW order: fold k = genuine block k then impostor block k, 20 + 20 each
    folds = assign_folds(same, 10)
    assert Counter(zip(folds.tolist(), same)) == {(k, s): 20 for k in range(10) for s in (True, False)}
    blocks = [(f, s) for f, s in zip(folds.tolist(), same)]
    assert blocks == sorted(blocks, key=lambda x: (x[0], not x[1]))
    assert generate_pairs(labels, 400, seed=1) == pairs
    assert generate_pairs(labels, 400, seed=2) != pairs


def test_all_genuine_pairs_when_requested_equals_available():
    labels = np.array([0, 0, 0, 1, 1, 2, 3])  # genuine: 3 + 1 = 4 pairs
    with pytest.warns(UserWarning, match="using 4 \\+ 4"):
        pairs = generate_pairs(labels, num_pairs=100, seed=0, folds=2)
    genuine = sorted((i, j) for i, j, s in pairs if s)
    assert genuine == [(0, 1), (0, 2), (1, 2), (3, 4)]


def test_genuine_sampling_is_uniform_over_pairs():
    # identity 0 has 10 pairs, identity 1 has 1: drawing 1 pair many times picks identity 1 about 1/11 of the time
    labels = np.array([0] * 5 + [1] * 2 + [2, 3])
    hits = sum(labels[generate_pairs(labels, 2, seed=s, folds=1, warn=False)[0][0]] == 1 for s in range(2000))
    assert abs(hits / 2000 - 1 / 11) < 0.025


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 identities"):
        generate_pairs([0, 0, 0], 10, folds=1)
    with pytest.raises(ValueError, match="identity with 2 images"):
        generate_pairs([0, 1, 2], 10, folds=1)
    with pytest.raises(ValueError, match="10 folds"):
        generate_pairs([0, 0, 1, 1], 100, folds=10, warn=False)
    with pytest.raises(ValueError, match="3 impostor pairs cannot be split into 4 folds"):
        assign_folds([True] * 4 + [False] * 3, 4)
