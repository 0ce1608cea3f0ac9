"""LPBB under DDP: two CPU processes (gloo) keep identical loss tables through the callback's all-gather and
take disjoint interleaved positions of one global draw sequence. (The real 2-process Lightning fit with
LPBBSampler + LossFeedback is in tests/callbacks/test_loss_feedback.py.)"""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from zoo.datamodules.samplers.lpbb import LPBBSampler, all_gather_pairs  # the callback's gather

N, B, STEPS, WORLD = 60, 3, 8, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loss(rank: int, step: int, idx: torch.Tensor) -> torch.Tensor:
    return (idx.double() * (rank + 2) + step) % 7 + 0.25 * (rank + 1)


def _gloo_worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        s = LPBBSampler(range(N), batch_size=B, seed=4, rank=rank, world_size=WORLD)
        it = iter(s)
        shards, gathered = [], []
        for step in range(STEPS):
            idx = torch.tensor([next(it) for _ in range(B)])
            shards.append(idx)
            # per-rank different losses, and rank 1 feeds one pair fewer (uneven sizes in the gather)
            k = B if rank == 0 else B - 1
            gi, gl = all_gather_pairs(idx[:k], _loss(rank, step, idx[:k]).float())
            gathered.append((gi, gl))
            s.update(gi, gl)
            s.mark_trained(step + 1)
        torch.save({"shards": shards, "gathered": gathered, "loss": torch.from_numpy(s.loss),
                    "seen": torch.from_numpy(s.seen)}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_two_gloo_ranks_share_tables_and_one_global_sequence(tmp_path):
    mp.spawn(_gloo_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    r = [torch.load(tmp_path / f"rank{k}.pt") for k in range(WORLD)]
    torch.testing.assert_close(r[0]["loss"], r[1]["loss"], rtol=0, atol=0)
    assert torch.equal(r[0]["seen"], r[1]["seen"])
    # the gathered pairs are identical on both ranks and contain rank 0's pairs, then rank 1's
    for step in range(STEPS):
        (i0, l0), (i1, l1) = r[0]["gathered"][step], r[1]["gathered"][step]
        assert torch.equal(i0, i1) and torch.equal(l0, l1)
        want_i = torch.cat([r[0]["shards"][step], r[1]["shards"][step][: B - 1]])
        assert torch.equal(i0, want_i)
        want_l = torch.cat([_loss(0, step, want_i[:B]), _loss(1, step, want_i[B:])]).float().double()
        torch.testing.assert_close(l0, want_l)
    # a single-process replay with world_size=2 sees the same global draws; rank r holds positions r::2
    ref = LPBBSampler(range(N), batch_size=B, seed=4, rank=0, world_size=WORLD)
    for step in range(STEPS):
        g = ref.global_draws(step)
        for k in range(WORLD):
            np.testing.assert_array_equal(r[k]["shards"][step].numpy(), g[k::WORLD])
        ref.update(*r[0]["gathered"][step])
    np.testing.assert_array_equal(ref.loss, r[0]["loss"].numpy())
