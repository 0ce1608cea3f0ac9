"""P×K sampler: batch structure, rank-disjoint identities (simulated and real gloo), exact resume, small identities."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from collections import Counter

import numpy as np
import pytest
import torch

from zoo.datamodules.samplers.pk import PKSampler


class Labels:
    """Minimal identity dataset: only labels (the sampler must not load samples)."""

    def __init__(self, counts, names=None):
        self.identities = np.repeat(np.arange(len(counts)), counts)
        self.identity_names = names

    def __len__(self):
        return len(self.identities)

    def __getitem__(self, i):  # pragma: no cover - the sampler never loads samples
        raise AssertionError("PKSampler loaded a sample")


def _structure(batch, labels, p, k):
    c = Counter(labels[batch].tolist())
    assert len(batch) == p * k and len(c) == p and set(c.values()) == {k}
    return set(c)


def test_every_batch_is_p_identities_times_k_distinct_images():
    ds = Labels([20] * 30)
    s = PKSampler(ds, batch_size=40, k=4)  # p = 10
    assert (s.p, s.k, len(s)) == (10, 4, 600 // 40)
    batches = list(s)
    assert len(batches) == len(s)
    for b in batches:
        _structure(b, ds.identities, 10, 4)
        assert len(set(b)) == len(b)  # identities with >= k images: no repeats inside a batch
    # images of an identity are cycled through before repeating: its first 5 draws cover all 20
    first = {}
    for b in batches:
        for i in b:
            first.setdefault(ds.identities[i], []).append(i)
    for ident, seq in first.items():
        if len(seq) >= 20:
            assert len(set(seq[:20])) == 20


def test_two_simulated_ranks_get_disjoint_identities():
    ds = Labels(np.random.default_rng(0).integers(5, 30, 50))
    r0 = PKSampler(ds, batch_size=30, k=5, seed=7, rank=0, world_size=2)
    r1 = PKSampler(ds, batch_size=30, k=5, seed=7, rank=1, world_size=2)
    assert len(r0) == len(r1) == max(1, int(ds.identities.size) // (30 * 2))
    for epoch in (0, 1):
        r0.set_epoch(epoch)
        r1.set_epoch(epoch)
        b0, b1 = list(r0), list(r1)
        assert len(b0) == len(b1) == len(r0)
        for x, y in zip(b0, b1):
            assert not (_structure(x, ds.identities, 6, 5) & _structure(y, ds.identities, 6, 5))
    r0.set_epoch(0)
    e0 = list(r0)
    r0.set_epoch(1)
    assert list(r0) != e0  # a new epoch draws a new order


def test_resume_continues_exactly():
    ds = Labels(np.random.default_rng(1).integers(3, 25, 40))
    ref = PKSampler(ds, batch_size=24, k=4, seed=3)
    ref.set_epoch(2)
    full = list(ref)
    a = PKSampler(ds, batch_size=24, k=4, seed=3)
    a.set_epoch(2)
    it = iter(a)
    head = [next(it) for _ in range(3)]
    state = a.state_dict()
    b = PKSampler(ds, batch_size=24, k=4, seed=3)
    b.load_state_dict(state)
    b.set_epoch(2)  # Lightning calls set_epoch with the resumed epoch: the position is kept
    assert head + list(b) == full
    b.set_epoch(3)  # the next epoch starts at its beginning
    assert len(list(b)) == len(b)
    # trained position reported by the LossFeedback callback wins over the prefetched one
    c = PKSampler(ds, batch_size=24, k=4, seed=3)
    c.set_epoch(2)
    it = iter(c)
    [next(it) for _ in range(5)]  # the DataLoader prefetched 5 batches ...
    c.mark_trained(2)  # ... of which 2 were trained when the checkpoint is written
    d = PKSampler(ds, batch_size=24, k=4, seed=3)
    d.load_state_dict(c.state_dict())
    assert list(d) == full[2:]
    # iterating again without set_epoch moves on to the next epoch (as Lightning would ask)
    ref.set_epoch(3)
    e3 = list(ref)
    assert list(d) == e3 and d.epoch == 3
    with pytest.warns(UserWarning, match="cannot be resumed exactly"):
        PKSampler(ds, batch_size=24, k=4, seed=4).load_state_dict(state)


def test_small_identities_replace_and_skip():
    ds = Labels([3, 10, 10, 10], names=["small", "a", "b", "c"])
    rep = PKSampler(ds, batch_size=10, k=5)  # p = 2
    seen_small = False
    for epoch in range(5):
        rep.set_epoch(epoch)
        for b in rep:
            _structure(b, ds.identities, 2, 5)
            small = [i for i in b if ds.identities[i] == 0]
            if small:
                seen_small = True
                assert set(small) == {0, 1, 2}  # all 3 images, plus 2 drawn again
    assert seen_small
    with pytest.warns(UserWarning, match="skipped 1 of 4 identities \\(3 images\\).*'small'"):
        sk = PKSampler(ds, batch_size=10, k=5, small_identities="skip")
    assert sk.skipped == {"identities": 1, "images": 3}
    assert all(0 not in ds.identities[b] for b in sk)


def test_bad_configuration_messages():
    ds = Labels([1, 10, 10], names=["Lonely_Person", "a", "b"])
    with pytest.raises(ValueError, match="'Lonely_Person'.*small_identities=skip.*min_images_per_identity=2"):
        PKSampler(ds, batch_size=10, k=5)
    ok = Labels([10, 10, 10])
    with pytest.raises(ValueError, match="data.batch_size=64 is invalid: not divisible by sampler.k=15"):
        PKSampler(ok, batch_size=64, k=15)
    with pytest.raises(ValueError, match="differs from data.batch_size"):
        PKSampler(ok, batch_size=20, p=3, k=5)
    with pytest.raises(ValueError, match="sampler.small_identities='drop' is invalid: unknown choice"):
        PKSampler(ok, batch_size=10, k=5, small_identities="drop")
    with pytest.raises(ValueError, match="sampler.p=2 is invalid: each step needs world_size\\*p = 2\\*2 = 4 distinct identities.*has 3"):
        PKSampler(ok, batch_size=10, k=5, world_size=2, rank=1)

    class NoLabels(torch.utils.data.Dataset):
        def __len__(self):
            return 3

    with pytest.raises(ValueError, match="NoLabels has no 'identities'"):
        PKSampler(NoLabels(), batch_size=10, k=5)


def test_batches_per_epoch_and_dataloader():
    ds = Labels([8] * 10)
    s = PKSampler(ds, batch_size=8, k=4, batches_per_epoch=7)
    assert len(s) == 7 and len(list(s)) == 7

    class Data(Labels):
        def __getitem__(self, i):
            return {"identity": torch.tensor(int(self.identities[i])), "index": torch.tensor(i)}

    d = Data([8] * 10)
    loader = torch.utils.data.DataLoader(d, batch_sampler=PKSampler(d, batch_size=8, k=4))
    batch = next(iter(loader))
    assert batch["identity"].shape == (8,) and len(set(batch["identity"].tolist())) == 2


# ---------------------------------------------------------------------------------------------- real gloo
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gloo_worker(rank, world, port, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        ds = Labels(np.random.default_rng(0).integers(4, 20, 40))
        r, w = dist.get_rank(), dist.get_world_size()
        s = PKSampler(ds, batch_size=12, k=3, seed=11, rank=r, world_size=w)
        mine = [sorted(set(ds.identities[b].tolist())) for b in s]
        gathered = [None] * w
        dist.all_gather_object(gathered, mine)
        if rank == 0:
            torch.save({"steps": gathered, "len": len(s)}, os.path.join(out_dir, "ids.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_gloo_ranks_get_disjoint_identities(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    # the spawned processes import this module by its name (tests.datamodules... under --import-mode=importlib)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    mp.spawn(_gloo_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    got = torch.load(tmp_path / "ids.pt")
    a, b = got["steps"]
    assert len(a) == len(b) == got["len"] > 0
    for x, y in zip(a, b):
        assert len(x) == len(y) == 4 and not set(x) & set(y)
