"""UniformSampler: disjoint covering shards, the DistributedSampler recipe, mid-epoch resume, bad input."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from zoo.datamodules.samplers.uniform import UniformSampler


@pytest.mark.parametrize("n, world", [(10, 1), (10, 3), (12, 4), (7, 2), (2, 3)])
def test_shards_are_disjoint_equal_and_cover_the_dataset(n, world):
    shards = [list(UniformSampler(range(n), seed=1, rank=r, world_size=world)) for r in range(world)]
    per_rank = -(-n // world)
    assert all(len(s) == per_rank for s in shards)
    flat = [i for s in shards for i in s]
    assert sorted(set(flat)) == list(range(n))  # covers everything
    pad = per_rank * world - n
    assert len(flat) - len(set(flat)) == pad  # only the padding repeats
    if pad == 0:
        assert len(set(flat)) == len(flat)


@pytest.mark.parametrize("n, world", [(10, 3), (12, 4), (7, 2)])
def test_drop_last_shards_are_disjoint(n, world):
    shards = [set(UniformSampler(range(n), rank=r, world_size=world, drop_last=True)) for r in range(world)]
    assert all(len(s) == n // world for s in shards)
    assert len(set().union(*shards)) == (n // world) * world


@pytest.mark.parametrize("n, world, drop_last", [(10, 3, False), (10, 3, True), (9, 1, False)])
def test_same_order_as_torch_distributed_sampler(n, world, drop_last):
    for epoch in (0, 3):
        for r in range(world):
            ours = UniformSampler(range(n), seed=5, rank=r, world_size=world, drop_last=drop_last)
            ref = DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=True, seed=5, drop_last=drop_last)
            ours.set_epoch(epoch)
            ref.set_epoch(epoch)
            assert list(ours) == list(ref)


def test_epochs_reshuffle_and_iterating_again_moves_on():
    s = UniformSampler(range(20), seed=0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(e0) == sorted(e1) == list(range(20)) and e0 != e1
    assert list(s) == UniformSampler(range(20), seed=0).indices(2).tolist()  # no set_epoch: next epoch


def test_mid_epoch_resume_continues_where_training_stopped():
    s = UniformSampler(range(30), batch_size=4, seed=2)
    s.set_epoch(3)
    it = iter(s)
    pulled = [next(it) for _ in range(16)]  # the DataLoader pulled 4 batches ...
    s.mark_trained(3)  # ... but only 3 were trained when the checkpoint was written
    state = s.state_dict()
    assert state["position"] == 12 and state["epoch"] == 3
    t = UniformSampler(range(30), batch_size=4, seed=2)
    t.load_state_dict(state)
    t.set_epoch(3)  # Lightning calls set_epoch with the same epoch on resume: position is kept
    rest = list(t)
    full = UniformSampler(range(30), seed=2).indices(3).tolist()
    assert pulled[:12] + rest == full


def test_bad_values():
    for kw, key in [(dict(batch_size=0), "batch_size"), (dict(rank=1), "rank"), (dict(seed=-2), "seed"),
                    (dict(drop_last="yes"), "drop_last")]:
        with pytest.raises(ValueError, match=f"sampler.{key}"):
            UniformSampler(range(5), **kw)
    with pytest.raises(ValueError, match="sampler='uniform' is invalid: the training dataset has 0 samples"):
        UniformSampler([])
    with pytest.raises(ValueError, match="training set has 6"):
        UniformSampler(range(6)).load_state_dict(UniformSampler(range(5)).state_dict())
    assert isinstance(UniformSampler(range(5)).indices(), torch.Tensor)
