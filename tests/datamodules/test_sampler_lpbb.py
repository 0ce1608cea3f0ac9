"""LPBBSampler (seed 002, Eq. 1): draws vs a literal implementation, frequencies vs loss proportions,
extensions vs hand-computed probabilities, checkpoint round trips and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from zoo.datamodules.samplers.lpbb import LPBBSampler


def _eq1_literal(losses, u):
    """Eq. 1 word for word: the smallest k whose cumulative loss sum_{i<=k} Loss_i is >= u."""
    acc = 0.0
    for k, loss in enumerate(losses):
        acc += loss
        if acc >= u:
            return k
    raise AssertionError("u above the total")


def _sampler(losses, **kw):
    s = LPBBSampler(range(len(losses)), batch_size=kw.pop("batch_size", 4), **kw)
    s.update(np.arange(len(losses)), np.asarray(losses, dtype=np.float64))
    return s


def _frequencies(s, draws, seed=0):
    idx = s.draw(draws, np.random.default_rng(seed))
    return np.bincount(idx, minlength=s.n)


def test_search_equals_literal_eq1_on_exact_boundaries():
    # integer losses (exact sums) with zeros inside and at both ends; u on a grid hitting every boundary
    losses = [0, 3, 0, 0, 1, 2, 0, 5, 1, 0, 0, 4, 0]
    s = _sampler(losses)
    total = sum(losses)
    u = np.arange(1, 4 * total + 1) / 4.0  # (0, total] in steps of 1/4
    got = s.search(u)
    want = [_eq1_literal(losses, x) for x in u]
    np.testing.assert_array_equal(got, want)
    # and torch.searchsorted on the explicit cumulative sum (left side = smallest k with cumsum_k >= u)
    cs = torch.cumsum(torch.tensor(losses, dtype=torch.float64), 0)
    np.testing.assert_array_equal(got, torch.searchsorted(cs, torch.from_numpy(u)).numpy())
    assert not np.isin(got, np.flatnonzero(np.asarray(losses) == 0)).any()


def test_search_equals_literal_eq1_random_floats():
    rng = np.random.default_rng(3)
    losses = rng.gamma(0.5, 2.0, size=1000)  # odd n: the tree is padded to 1024 leaves
    losses[rng.random(1000) < 0.2] = 0.0
    s = _sampler(losses)
    u = rng.random(300) * losses.sum()
    np.testing.assert_array_equal(s.search(u), [_eq1_literal(losses, x) for x in u])


def test_draw_frequencies_match_loss_proportions_chi_square():
    losses = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 7.5, 2.0, 0.0, 1.0, 9.0])
    s = _sampler(losses)
    freq = _frequencies(s, 200_000, seed=1)
    p = losses / losses.sum()
    assert freq[losses == 0].sum() == 0
    nz = p > 0
    _, pval = stats.chisquare(freq[nz], p[nz] * freq.sum())
    assert pval > 1e-3
    # the test has power: a uniform distribution is rejected
    _, pval_uniform = stats.chisquare(freq[nz], np.full(nz.sum(), freq.sum() / nz.sum()))
    assert pval_uniform < 1e-12


def test_iteration_uses_loss_proportions_and_is_with_replacement():
    losses = np.array([10.0, 1.0, 1.0, 0.0])
    s = _sampler(losses, batch_size=8, num_samples=40_000)
    idx = np.fromiter(iter(s), dtype=np.int64)
    assert len(idx) == len(s) == 40_000
    freq = np.bincount(idx, minlength=4)
    assert freq[3] == 0
    _, pval = stats.chisquare(freq[:3], losses[:3] / 12.0 * freq.sum())
    assert pval > 1e-3


def test_update_changes_the_distribution_immediately():
    s = _sampler([1.0, 1.0, 1.0, 1.0])
    s.update([2], [97.0])
    np.testing.assert_allclose(s.probabilities(), [0.01, 0.01, 0.97, 0.01])
    freq = _frequencies(s, 50_000)
    assert abs(freq[2] / 50_000 - 0.97) < 0.005


def test_duplicate_indices_get_the_mean_loss():
    s = _sampler([1.0, 1.0, 1.0])
    s.update(torch.tensor([0, 2, 0]), torch.tensor([2.0, 5.0, 4.0]))
    np.testing.assert_allclose(s.loss, [3.0, 1.0, 5.0])


def test_zero_loss_floor():
    losses = [0.0, 0.0, 2.0, 6.0]
    plain = _sampler(losses)
    np.testing.assert_allclose(plain.probabilities(), [0, 0, 0.25, 0.75])
    assert _frequencies(plain, 20_000)[:2].sum() == 0
    floored = _sampler(losses, floor=1.0)  # w = max(loss, 1) = [1, 1, 2, 6]
    np.testing.assert_allclose(floored.probabilities(), [0.1, 0.1, 0.2, 0.6])
    freq = _frequencies(floored, 100_000)
    _, pval = stats.chisquare(freq, np.array([0.1, 0.1, 0.2, 0.6]) * 100_000)
    assert pval > 1e-3


def test_all_zero_losses_fall_back_to_uniform_with_a_warning():
    s = _sampler([0.0, 0.0, 0.0])
    with pytest.warns(RuntimeWarning, match="weight 0"):
        freq = _frequencies(s, 30_000)
    assert freq.min() > 9_000


def test_temperature_and_uniform_mix_by_hand():
    losses = [1.0, 4.0, 9.0]
    t2 = _sampler(losses, temperature=2.0)  # w = sqrt(loss) = [1, 2, 3]
    np.testing.assert_allclose(t2.probabilities(), [1 / 6, 2 / 6, 3 / 6])
    sharp = _sampler(losses, temperature=0.5)  # w = loss^2 = [1, 16, 81]
    np.testing.assert_allclose(sharp.probabilities(), [1 / 98, 16 / 98, 81 / 98])
    mix = _sampler(losses, temperature=2.0, uniform_mix=0.4)  # 0.6 * [1,2,3]/6 + 0.4/3
    want = np.array([0.1 + 0.4 / 3, 0.2 + 0.4 / 3, 0.3 + 0.4 / 3])
    np.testing.assert_allclose(mix.probabilities(), want)
    freq = _frequencies(mix, 120_000, seed=5)
    _, pval = stats.chisquare(freq, want * 120_000)
    assert pval > 1e-3
    full = _sampler([0.0, 0.0, 5.0], uniform_mix=1.0)
    np.testing.assert_allclose(full.probabilities(), [1 / 3] * 3)


def test_initial_loss_choices():
    # n = 4; samples 0 and 1 seen with losses 2 and 6, samples 2 and 3 unseen
    def make(**kw):
        s = LPBBSampler(range(4), batch_size=2, **kw)
        np.testing.assert_allclose(s.probabilities(), [0.25] * 4)  # nothing seen: uniform start
        s.update([0, 1], [2.0, 6.0])
        return s

    np.testing.assert_allclose(make().probabilities(), [2 / 16, 6 / 16, 4 / 16, 4 / 16])  # mean = 4
    np.testing.assert_allclose(make(initial_loss="max").probabilities(), [2 / 20, 6 / 20, 6 / 20, 6 / 20])
    np.testing.assert_allclose(make(initial_loss=1.0).probabilities(), [2 / 10, 6 / 10, 1 / 10, 1 / 10])
    # "max" follows the table down when the largest loss shrinks (max tree, not a running max)
    s = make(initial_loss="max")
    s.update([1], [1.0])
    np.testing.assert_allclose(s.probabilities(), [2 / 7, 1 / 7, 2 / 7, 2 / 7])
    freq = _frequencies(s, 70_000)
    _, pval = stats.chisquare(freq, np.array([2, 1, 2, 2]) / 7 * 70_000)
    assert pval > 1e-3


def test_len_epochs_and_determinism():
    s = _sampler(np.arange(1.0, 21.0), batch_size=4)
    assert len(s) == 20
    a = list(s)
    b = list(_sampler(np.arange(1.0, 21.0), batch_size=4))
    assert a == b  # same seed, epoch, table -> same draws
    s.set_epoch(1)
    c = list(s)
    assert c != a and len(c) == 20
    assert list(_sampler(np.arange(1.0, 21.0), batch_size=4, seed=1)) != a
    two = LPBBSampler(range(21), batch_size=4, world_size=2, rank=1)
    assert len(two) == 10
    assert len(LPBBSampler(range(21), batch_size=4, num_samples=7)) == 7


def _run(sampler, steps, rng):
    """Consume ``steps`` batches, feeding back a loss per drawn index; returns the batches."""
    it = iter(sampler)
    out = []
    for k in range(steps):
        batch = [next(it) for _ in range(sampler.batch_size)]
        sampler.update(batch, rng.random(len(batch)) * 10)
        sampler.mark_trained(k + 1)
        out.append(batch)
    return out


def test_state_dict_round_trip_gives_identical_draws():
    s = LPBBSampler(range(50), batch_size=5, seed=3, initial_loss="max")
    _run(s, 4, np.random.default_rng(0))
    state = s.state_dict()
    t = LPBBSampler(range(50), batch_size=5, seed=3, initial_loss="max")
    t.load_state_dict(state)
    np.testing.assert_array_equal(t.loss, s.loss)
    np.testing.assert_array_equal(t.seen, s.seen)
    # continue both with the same feedback: identical batches (rest of the epoch and the next one)
    a = _run(s, 6, np.random.default_rng(1))
    b = _run(t, 6, np.random.default_rng(1))
    assert a == b
    s.set_epoch(1)
    t.set_epoch(1)
    assert _run(s, 10, np.random.default_rng(2)) == _run(t, 10, np.random.default_rng(2))


def test_resume_replays_prefetched_draws_like_the_uninterrupted_run():
    """A DataLoader pulls indices ahead of training: draws for batches t+1, t+2 happen before the loss of
    batch t arrives. The checkpoint keeps those pending draws, so the resumed run repeats them."""
    lag = 2

    def run(sampler, start, stop, losses_of, it=None):
        it = iter(sampler) if it is None else it
        prefetched = [[next(it) for _ in range(sampler.batch_size)] for _ in range(lag)]
        out = []
        for k in range(start, stop):
            batch = prefetched.pop(0)
            if k + lag < stop_all:
                prefetched.append([next(it) for _ in range(sampler.batch_size)])
            sampler.update(batch, losses_of(k, batch))
            sampler.mark_trained(k + 1)
            out.append(batch)
        return out

    stop_all = 12  # 60 samples / batch 5

    def losses_of(k, batch):
        return [(i * 7 + k) % 11 + 0.5 for i in batch]

    full = LPBBSampler(range(60), batch_size=5, seed=9)
    ref = run(full, 0, stop_all, losses_of)

    first = LPBBSampler(range(60), batch_size=5, seed=9)
    part1 = run(first, 0, 5, losses_of)
    state = first.state_dict()
    assert state["step"] == 5 and sorted(state["pending"]) == [5, 6]
    second = LPBBSampler(range(60), batch_size=5, seed=9)
    second.load_state_dict(state)
    part2 = run(second, 5, stop_all, losses_of)
    assert part1 + part2 == ref
    np.testing.assert_array_equal(second.loss, full.loss)


@pytest.mark.parametrize("kw, key", [
    (dict(batch_size=0), "batch_size"), (dict(world_size=0), "world_size"), (dict(rank=2, world_size=2), "rank"),
    (dict(mode="bb"), "mode"), (dict(refresh_every=0.0), "refresh_every"), (dict(refresh_every=1.5), "refresh_every"),
    (dict(num_samples=0), "num_samples"), (dict(initial_loss="min"), "initial_loss"),
    (dict(initial_loss=-1.0), "initial_loss"), (dict(floor=-0.1), "floor"), (dict(uniform_mix=1.1), "uniform_mix"),
    (dict(temperature=0.0), "temperature"), (dict(seed=-1), "seed"),
])
def test_constructor_rejects_bad_values(kw, key):
    with pytest.raises(ValueError, match=f"sampler.{key}"):
        LPBBSampler(range(10), **kw)


def test_update_rejects_nan_inf_negative_and_out_of_range():
    s = _sampler([1.0] * 10)
    with pytest.raises(ValueError, match=r"non-finite loss.*indices \[3, 7\]"):
        s.update([1, 3, 5, 7], [1.0, math.nan, 2.0, math.inf])
    with pytest.raises(ValueError, match=r"negative loss.*indices \[4\]"):
        s.update([4], [-1.0])
    with pytest.raises(ValueError, match=r"\[10\] are outside"):
        s.update([10], [1.0])
    with pytest.raises(ValueError, match="differ in length"):
        s.update([1, 2], [1.0])
    np.testing.assert_allclose(s.loss, 1.0)  # nothing was written by the failed calls
    with pytest.raises(ValueError, match="training set has 11"):
        LPBBSampler(range(11)).load_state_dict(s.state_dict())


def test_draws_before_the_first_progress_report_are_kept_for_a_resume():
    s = LPBBSampler(range(30), batch_size=3, seed=2)
    it = iter(s)
    ahead = [[next(it) for _ in range(3)] for _ in range(3)]  # prefetch before the first trained batch
    s.update(ahead[0], [5.0, 1.0, 2.0])
    s.mark_trained(1)
    state = s.state_dict()
    assert sorted(state["pending"]) == [1, 2]
    t = LPBBSampler(range(30), batch_size=3, seed=2)
    t.load_state_dict(state)
    replay = list(t)
    assert replay[:6] == ahead[1] + ahead[2]
