"""NormalisedClassifier (class centres, sub-centres) and Partial FC sampling (An et al. 2021), against
plain-torch references; DDP with two gloo CPU processes."""
from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from zoo.losses import ArcFaceLoss, CombinedMarginLoss, CosFaceLoss, NormalisedClassifier, NormLinear, build

D, C = 6, 40


def _reference_logits(emb, weight, labels, s, m1, m2, m3, k=1):
    """Textbook margin logits over every class, written independently (one-hot, full matrix)."""
    cos = F.normalize(emb, dim=1) @ F.normalize(weight, dim=1).t()
    if k > 1:
        cos = cos.view(cos.shape[0], -1, k).amax(-1)
    ct = cos.gather(1, labels[:, None]).squeeze(1)
    theta = torch.acos(ct)
    phi = torch.where(m1 * theta + m2 <= math.pi, torch.cos(m1 * theta + m2) - m3, ct - m2 * math.sin(m2) - m3)
    return s * torch.where(F.one_hot(labels, cos.shape[1]).bool(), phi[:, None], cos)


def _data(b=12, seed=0, c=C):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, D, generator=g, dtype=torch.float64), torch.randint(0, c, (b,), generator=g)


def test_cosine_brute_force_with_subcenters():
    clf = NormLinear(D, 5, subcenters=3).double()
    assert NormLinear is NormalisedClassifier and clf.weight.shape == (15, D)
    emb, _ = _data(b=4)
    out = clf(emb)
    for i in range(4):
        for c in range(5):
            best = max(float(F.cosine_similarity(emb[i], clf.weight.detach()[c * 3 + j], dim=0)) for j in range(3))
            assert out[i, c].item() == pytest.approx(best, abs=1e-12)
    # a class subset gives those columns
    cls = torch.tensor([1, 4])
    torch.testing.assert_close(clf(emb, cls, scale=2.0), 2.0 * out[:, cls])


def test_sample_keeps_every_positive_and_draws_the_rest_uniformly():
    clf = NormalisedClassifier(D, C, sample_rate=0.25)
    labels = torch.tensor([3, 3, 17, 39, 0])
    counts = torch.zeros(C)
    for seed in range(300):
        torch.manual_seed(seed)
        classes, local = clf.sample(labels)
        assert classes.numel() == 10 and torch.equal(classes, classes.sort().values)
        assert classes.unique().numel() == 10
        assert torch.equal(classes[local], labels)  # remapped labels point at the same classes
        counts[classes] += 1
    positives = labels.unique()
    assert (counts[positives] == 300).all()
    others = torch.ones(C, dtype=torch.bool)
    others[positives] = False
    # negatives drawn uniformly: 6 of 36 per draw -> expected 50 per class over 300 draws
    assert counts[others].sum() == 300 * 6
    assert (counts[others] - 50).abs().max() < 25
    # more positives than r*C: S = P
    many = torch.arange(0, C, 2)
    classes, local = clf.sample(many)
    assert torch.equal(classes, many) and torch.equal(local, torch.arange(len(many)))


@pytest.mark.parametrize("cls,kw,params", [
    (ArcFaceLoss, {}, (64.0, 1.0, 0.5, 0.0)),
    (CosFaceLoss, {}, (64.0, 1.0, 0.0, 0.35)),
    (CombinedMarginLoss, {"m1": 0.9, "m2": 0.4, "m3": 0.15}, (64.0, 0.9, 0.4, 0.15)),
])
@pytest.mark.parametrize("k", [1, 2])
def test_partial_fc_equals_softmax_over_the_sampled_classes(cls, kw, params, k):
    emb, labels = _data()
    loss = cls(D, C, subcenters=k, sample_rate=0.3, **kw).double()
    e1 = emb.clone().requires_grad_()
    torch.manual_seed(5)
    out = loss(e1, labels)
    out.backward()
    torch.manual_seed(5)
    classes, _ = loss.sample(labels)
    assert classes.numel() == 12 and torch.isin(labels, classes).all()
    e2 = emb.clone().requires_grad_()
    w2 = loss.weight.detach().clone().requires_grad_()
    full = _reference_logits(e2, w2, labels, *params, k=k)
    ref = F.cross_entropy(full[:, classes], torch.searchsorted(classes, labels))
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(e1.grad, e2.grad)
    torch.testing.assert_close(loss.weight.grad, w2.grad)
    unused = torch.ones(C, dtype=torch.bool)
    unused[classes] = False
    assert (loss.weight.grad.view(C, k, D)[unused] == 0).all()  # centres not drawn get no gradient


@pytest.mark.parametrize("k", [1, 3])
def test_rate_one_and_eval_mode_equal_full_arcface(k):
    emb, labels = _data()
    full = ArcFaceLoss(D, C, subcenters=k).double()
    for loss in (ArcFaceLoss(D, C, subcenters=k, sample_rate=1.0).double(),
                 ArcFaceLoss(D, C, subcenters=k, sample_rate=0.1).double().eval()):
        loss.load_state_dict(full.state_dict())
        assert not loss.sampling
        e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
        a, b = loss(e1, labels), full(e2, labels)
        a.backward()
        b.backward()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(e1.grad, e2.grad, rtol=0, atol=0)
        torch.testing.assert_close(loss.weight.grad, full.weight.grad, rtol=0, atol=0)
        full.zero_grad()
    # the sampling path itself with r = 1 selects every class in order: same value and gradients
    clf = ArcFaceLoss(D, C, subcenters=k).double()
    clf.load_state_dict(full.state_dict())
    classes, local = clf.sample(labels)
    assert torch.equal(classes, torch.arange(C)) and torch.equal(local, labels)
    torch.testing.assert_close(clf.cosine(emb, classes), full.cosine(emb))


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan"), "0.5", True])
def test_bad_sample_rate_names_the_argument(rate):
    with pytest.raises(ValueError, match="sample_rate"):
        build("arcface", embedding_dim=D, num_classes=C, sample_rate=rate)


# ---- DDP: two gloo CPU processes, replicated centres ---------------------------------------------------
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gloo_worker(rank: int, port: int, out_dir: str, state: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        loss = ArcFaceLoss(D, C, sample_rate=0.5, reduction="sum").double()
        loss.load_state_dict(state)
        torch.manual_seed(100 + rank)  # different RNG states: the class set must still be rank 0's
        emb, labels = _data(b=6, seed=rank)
        labels = labels if rank == 0 else labels % 5 + 30  # rank 1's positives are absent on rank 0
        classes, local = loss.sample(labels)
        e = emb.clone().requires_grad_()
        torch.manual_seed(100 + rank)
        out = loss(e, labels)
        out.backward()
        torch.save({"classes": classes, "local": local, "labels": labels, "emb": emb, "loss": out.detach(),
                    "grad_w": loss.weight.grad}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_two_gloo_ranks_share_one_class_set_holding_every_ranks_positives(tmp_path):
    ref = ArcFaceLoss(D, C, reduction="sum").double()
    mp.spawn(_gloo_worker, args=(_free_port(), str(tmp_path), ref.state_dict()), nprocs=WORLD, join=True)
    r = [torch.load(tmp_path / f"rank{k}.pt") for k in range(WORLD)]
    assert torch.equal(r[0]["classes"], r[1]["classes"])
    classes = r[0]["classes"]
    all_labels = torch.cat([r[0]["labels"], r[1]["labels"]])
    assert torch.isin(all_labels, classes).all() and classes.numel() == max(20, all_labels.unique().numel())
    for k in range(WORLD):
        assert torch.equal(classes[r[k]["local"]], r[k]["labels"])
    # sum over ranks = single process on the concatenated batch with the same class set
    emb = torch.cat([r[0]["emb"], r[1]["emb"]])
    w = ref.weight.detach().clone().requires_grad_()
    full = _reference_logits(emb, w, all_labels, 64.0, 1.0, 0.5, 0.0)
    single = F.cross_entropy(full[:, classes], torch.searchsorted(classes, all_labels), reduction="sum")
    single.backward()
    torch.testing.assert_close(r[0]["loss"] + r[1]["loss"], single.detach())
    torch.testing.assert_close(r[0]["grad_w"] + r[1]["grad_w"], w.grad)  # what DDP's all-reduce (x world) sums
