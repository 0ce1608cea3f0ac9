"""Seed 003 Table 1-2 properties: pair statistics and EER against brute-force loops on a known embedding."""
import numpy as np
import pytest

from zoo.workflows.identity_properties import histogram_figure, pair_distances, properties, table


def _set(n_ids=6, per=5, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_ids), per)
    images = np.zeros((len(labels), 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = labels  # the label is written into the image
    images[:, 1, 1, 1] = (rng.random(len(labels)) * noise * 255).astype(np.uint8)
    return images, labels


def one_hot(images):  # a "recogniser" that reads the label (and the noise pixel) back
    v = np.zeros((len(images), 8))
    v[np.arange(len(images)), images[:, 0, 0, 0]] = 1.0
    v[:, 7] = images[:, 1, 1, 1] / 255.0
    return v


def test_pair_distances_brute_force():
    images, labels = _set(noise=0.5)
    emb = one_hot(images)
    d, same = pair_distances(emb, labels, pairs=20, seed=1)
    assert same.sum() == 20 and (~same).sum() == 20
    # every returned distance is the distance of some pair with that same/different status (loop check)
    for dist, s in zip(d, same):
        ok = [abs(np.sqrt(((emb[a] - emb[b]) ** 2).sum()) - dist) < 1e-9 and (labels[a] == labels[b]) == s
              for a in range(len(labels)) for b in range(a + 1, len(labels))]
        assert any(ok)


def test_properties_separable_set_has_zero_eer():
    rows, dists = properties({"toy": _set()}, {"onehot": one_hot}, pairs=30)
    r = rows[0]
    assert r["match_mean"] == pytest.approx(0.0) and r["nonmatch_mean"] == pytest.approx(np.sqrt(2))
    assert r["eer"] == pytest.approx(0.0) and r["pairs"] == "30/30"
    # a recogniser that sees nothing (constant embedding): EER 0.5
    rows, _ = properties({"toy": _set()}, {"blind": lambda im: np.zeros((len(im), 3))}, pairs=30)
    assert rows[0]["eer"] == pytest.approx(0.5)
    assert "| toy | blind |" in table(rows)
    fig = histogram_figure(dists)
    assert len(fig.axes) == 1
