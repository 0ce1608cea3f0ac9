"""Verification pair sets: seeded balanced genuine/impostor pair generation and LFW-style fold assignment.

Pure numpy (no torch, no Lightning): used by :mod:`zoo.metrics.verification` when no pair list is given and by
:mod:`zoo.datamodules.pairs` for a split's pair set, so both build the same pairs from the same labels and seed.

Protocol (LFW, Huang et al. 2007, "View 2"): pairs come in ``folds`` sets, each with equally many genuine (same
identity) and impostor (different identities) pairs; accuracy is estimated by 10-fold cross-validation.
A pair list is ordered like an LFW ``pairs.txt``: fold 0's genuine pairs, fold 0's impostor pairs, fold 1's ...

Fold rule (:func:`assign_folds`): the genuine pairs, in list order, are cut into ``folds`` contiguous chunks
(``numpy.array_split`` sizes: the first ``n % folds`` chunks get one extra pair), the impostor pairs likewise;
chunk k of each is fold k. For a list read from an LFW pairs.txt this reproduces the file's sets exactly.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

Pair = tuple[int, int, bool]


def _as_labels(identities: Sequence[int] | np.ndarray) -> np.ndarray:
    labels = np.asarray(identities)
    if labels.ndim != 1:
        raise ValueError(f"identities must be a 1-D sequence of labels, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"identities must be integer labels, got dtype {labels.dtype}")
    return labels.astype(np.int64, copy=False)


def _triangle_decode(t: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map t in [0, n(n-1)/2) to the t-th pair (a, b), a < b, of range(n) in row-major order of the upper triangle."""
    # row a holds n-1-a pairs; start(a) = a*n - a*(a+1)/2. Solve start(a) <= t for the largest a.
    nf = n.astype(np.float64)
    a = np.floor((2 * nf - 1 - np.sqrt((2 * nf - 1) ** 2 - 8 * t)) / 2).astype(np.int64)
    a = np.clip(a, 0, n - 2)
    start = a * n - a * (a + 1) // 2
    # guard against floating point at row boundaries
    low = t < start
    a[low] -= 1
    start = a * n - a * (a + 1) // 2
    high = t >= start + (n - 1 - a)
    a[high] += 1
    start = a * n - a * (a + 1) // 2
    b = a + 1 + (t - start)
    return a, b


def generate_pairs(identities: Sequence[int] | np.ndarray, num_pairs: int = 6000, seed: int = 0,
                   folds: int = 10, warn: bool = True) -> list[Pair]:
    """Balanced genuine/impostor pairs of positions into ``identities``, seeded, ordered by fold.

    Genuine pairs are drawn uniformly without replacement from all same-identity pairs {(i, j): i < j,
    y_i = y_j}; impostor pairs uniformly without replacement from all cross-identity pairs. Both counts are
    ``min(num_pairs // 2, #genuine available, #impostor available)`` so the set stays balanced; when that is
    fewer than requested a warning states the counts. Returns ``[(i, j, same), ...]`` with i < j, ordered
    fold 0 genuine, fold 0 impostor, fold 1 genuine, ... (see :func:`assign_folds`).
    """
    labels = _as_labels(identities)
    if not isinstance(num_pairs, (int, np.integer)) or num_pairs < 2:
        raise ValueError(f"num_pairs must be an integer >= 2, got {num_pairs!r}")
    if not isinstance(folds, (int, np.integer)) or folds < 1:
        raise ValueError(f"folds must be an integer >= 1, got {folds!r}")
    n = labels.size
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    per_id_pairs = counts * (counts - 1) // 2
    n_genuine_avail = int(per_id_pairs.sum())
    n_impostor_avail = n * (n - 1) // 2 - n_genuine_avail
    if n_genuine_avail == 0 or n_impostor_avail == 0:
        raise ValueError(
            f"cannot build verification pairs from {n} samples of {counts.size} identities: "
            f"{n_genuine_avail} genuine and {n_impostor_avail} impostor pairs exist; a pair set needs at least "
            f"one identity with 2 images and at least 2 identities")
    half = min(num_pairs // 2, n_genuine_avail, n_impostor_avail)
    if half < folds:
        raise ValueError(f"only {half} genuine/impostor pairs each can be built ({n} samples, {counts.size} "
                         f"identities) but {folds} folds need at least one of each per fold")
    if warn and half < num_pairs // 2:
        warnings.warn(f"generate_pairs: {num_pairs} pairs requested but only {n_genuine_avail} genuine and "
                      f"{n_impostor_avail} impostor pairs exist; using {half} + {half} (balanced)", stacklevel=2)
    rng = np.random.default_rng(seed)

    # --- genuine: choose `half` distinct ids in [0, G) and decode them to (identity, a, b) ---
    members = np.argsort(inverse, kind="stable")  # sample positions grouped by identity, ascending inside
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pair_offsets = np.concatenate([[0], np.cumsum(per_id_pairs)])
    g = np.sort(rng.choice(n_genuine_avail, size=half, replace=False))
    ident = np.searchsorted(pair_offsets, g, side="right") - 1
    a, b = _triangle_decode(g - pair_offsets[ident], counts[ident])
    gi, gj = members[offsets[ident] + a], members[offsets[ident] + b]
    genuine = np.stack([np.minimum(gi, gj), np.maximum(gi, gj)], 1)
    genuine = genuine[rng.permutation(half)]

    # --- impostor: rejection sampling of distinct cross-identity pairs (enumeration when they are few) ---
    if n_impostor_avail <= 4 * half or n_impostor_avail <= 200_000:
        ii, jj = np.triu_indices(n, 1)
        keep = labels[ii] != labels[jj]
        cand = np.stack([ii[keep], jj[keep]], 1)
        impostor = cand[rng.choice(len(cand), size=half, replace=False)]
    else:
        seen: set[tuple[int, int]] = set()
        out: list[tuple[int, int]] = []
        while len(out) < half:
            m = 2 * (half - len(out)) + 16
            x, y = rng.integers(0, n, m), rng.integers(0, n, m)
            for p, q in zip(np.minimum(x, y).tolist(), np.maximum(x, y).tolist()):
                if labels[p] != labels[q] and (p, q) not in seen:
                    seen.add((p, q))
                    out.append((p, q))
                    if len(out) == half:
                        break
        impostor = np.asarray(out, dtype=np.int64)

    pairs: list[Pair] = []
    for gch, ich in zip(np.array_split(genuine, folds), np.array_split(impostor, folds)):
        pairs += [(int(p), int(q), True) for p, q in gch]
        pairs += [(int(p), int(q), False) for p, q in ich]
    return pairs


def assign_folds(same: Sequence[bool] | np.ndarray, folds: int = 10) -> np.ndarray:
    """Fold id per pair: genuine pairs in list order cut into ``folds`` contiguous chunks, impostors likewise."""
    same = np.asarray(same, dtype=bool)
    out = np.empty(same.size, dtype=np.int64)
    for mask in (same, ~same):
        pos = np.flatnonzero(mask)
        if pos.size < folds:
            kind = "genuine" if mask is same else "impostor"
            raise ValueError(f"{pos.size} {kind} pairs cannot be split into {folds} folds; need at least one per fold")
        for k, chunk in enumerate(np.array_split(pos, folds)):
            out[chunk] = k
    return out
