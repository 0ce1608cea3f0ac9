"""New-identity search (seed 003 §4.1.3): the returned identities satisfy the paper's constraints when checked by
brute force; unsatisfiable thresholds stop after the bounded attempts with counts."""
import numpy as np
import pytest
import torch

from zoo.gan.identity import Thresholds, scaled_thresholds, search_new_identities, sphere_point


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _toy(dim=8, n=40, seed=0):
    rng = np.random.default_rng(seed)
    P = _unit(rng.normal(size=(n, dim)))
    A = rng.normal(size=(30, 4)).astype(np.float32)
    W = torch.as_tensor(rng.normal(size=(4, dim)) * 0.15, dtype=torch.float32)

    def embed_synth(identity, attrs):  # a "generator + encoder" that keeps the identity up to attribute noise
        return torch.nn.functional.normalize(identity + attrs @ W, dim=1)

    return P, A, embed_synth


def test_sphere_point_reaches_distance_on_sphere():
    rng = np.random.default_rng(1)
    c = _unit(rng.normal(size=(2, 16)))
    x, ok = sphere_point(-c[0], c, 1.3)
    assert ok and abs(np.linalg.norm(x) - 1) < 1e-9
    assert np.allclose(np.linalg.norm(c - x, axis=1), 1.3, atol=1e-3)


def test_found_identities_satisfy_constraints_brute_force():
    P, A, f = _toy()
    th = Thresholds(search=1.3, ids=0.9, match=0.7, unique=0.4)
    res = search_new_identities(P, A, f, count=5, thresholds=th, images_per_identity=10, image_retries=2,
                                max_attempts=200, seed=0)
    assert len(res.identities) == 5 and res.counts["found"] == 5
    ids, embs = res.identities, res.image_embeddings
    for a in range(len(ids)):  # α_I between every two new identities (loops, no vectorised helper)
        for b in range(a + 1, len(ids)):
            assert np.sqrt(((ids[a] - ids[b]) ** 2).sum()) >= th.ids
        for e in embs[a]:
            assert np.sqrt(((e - ids[a]) ** 2).sum()) <= th.match + 1e-9       # α_M: faces match I_new
            assert min(np.sqrt(((e - p) ** 2).sum()) for p in P) >= th.unique - 1e-9  # α_U: not a data identity
    # the recorded attribute rows regenerate the recorded embeddings
    k = 0
    again = f(torch.as_tensor(np.repeat(ids[k][None], 10, 0), dtype=torch.float32),
              torch.as_tensor(A[res.image_attributes[k]])).numpy()
    assert np.allclose(again, embs[k], atol=1e-5)


def test_unsatisfiable_thresholds_stop_with_counts():
    P, A, f = _toy()
    th = Thresholds(search=1.3, ids=0.9, match=0.01, unique=0.4)  # no face lands within 0.01 of its identity
    res = search_new_identities(P, A, f, count=3, thresholds=th, images_per_identity=5, max_attempts=7, seed=0)
    assert len(res.identities) == 0
    assert res.counts["attempts"] == 7 and res.counts["faces_not_matching"] + res.counts["too_close_to_new"] == 7


def test_scaled_thresholds_follow_the_encoder_distance_range():
    rng = np.random.default_rng(0)
    P = _unit(rng.normal(size=(200, 32)))
    labels = np.arange(200)
    nonmatch = np.mean([np.linalg.norm(P[i] - P[j]) for i in range(50) for j in range(50) if i != j])
    th = scaled_thresholds(P, labels)
    assert th.search == pytest.approx(nonmatch, rel=0.03)          # α_S is the mean non-matching distance
    assert th.match / th.search == pytest.approx(0.7 / 1.3)         # ratios of the paper kept
    with pytest.raises(ValueError, match="thresholds.ids"):
        Thresholds(ids=2.5)
