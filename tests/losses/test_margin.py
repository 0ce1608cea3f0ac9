"""ArcFace / CosFace / combined margin / sub-centre losses against brute-force loops and
pytorch-metric-learning (PML)."""
from __future__ import annotations

import math
import os

import pytest
import torch

from zoo.losses import (ArcFace, ArcFaceLoss, CombinedMargin, CombinedMarginLoss, CosFace, CosFaceLoss,
                        NormalisedClassifier, build)

B, D, C = 6, 5, 7


def _data(seed=0, b=B, d=D, c=C, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, d, generator=g, dtype=dtype)
    labels = torch.randint(0, c, (b,), generator=g)
    return emb, labels


def _make(cls, seed=1, dtype=torch.float64, **kw):
    loss = cls(D, C, **kw).to(dtype)
    with torch.no_grad():
        loss.weight.copy_(torch.randn(loss.weight.shape, generator=torch.Generator().manual_seed(seed)))
    return loss


def brute_force(emb, labels, weight, s, m1, m2, m3, k=1, fallback=True):
    """Per-sample cross-entropy with phi(theta) = cos(m1 theta + m2) - m3 on the target, in Python floats."""
    out = []
    for i in range(len(labels)):
        x = emb[i].tolist()
        nx = math.sqrt(sum(v * v for v in x))
        cos = []
        for c in range(C):
            best = -2.0
            for j in range(k):
                w = weight[c * k + j].tolist()
                nw = math.sqrt(sum(v * v for v in w))
                best = max(best, sum(a * b for a, b in zip(x, w)) / (nx * nw))
            cos.append(best)
        y = int(labels[i])
        theta = math.acos(cos[y])
        if m1 * theta + m2 <= math.pi or not fallback:
            phi = math.cos(m1 * theta + m2) - m3
        else:
            phi = cos[y] - m2 * math.sin(m2) - m3
        logits = [s * (phi if c == y else cos[c]) for c in range(C)]
        mx = max(logits)
        lse = mx + math.log(sum(math.exp(v - mx) for v in logits))
        out.append(lse - logits[y])
    return torch.tensor(out, dtype=torch.float64)


SETTINGS = [
    (ArcFaceLoss, {}, (64.0, 1.0, 0.5, 0.0)),
    (ArcFaceLoss, {"scale": 30.0, "margin": 0.3}, (30.0, 1.0, 0.3, 0.0)),
    (CosFaceLoss, {}, (64.0, 1.0, 0.0, 0.35)),
    (CombinedMarginLoss, {}, (64.0, 1.0, 0.3, 0.2)),
    (CombinedMarginLoss, {"m1": 0.9, "m2": 0.4, "m3": 0.15, "scale": 16.0}, (16.0, 0.9, 0.4, 0.15)),
]
IDS = [f"{c.__name__}{kw}" for c, kw, _ in SETTINGS]


@pytest.mark.parametrize("cls,kw,params", SETTINGS, ids=IDS)
@pytest.mark.parametrize("k", [1, 3])
def test_matches_brute_force(cls, kw, params, k):
    emb, labels = _data()
    loss = _make(cls, subcenters=k, reduction="none", **kw)
    expected = brute_force(emb, labels, loss.weight.detach(), *params, k=k)
    torch.testing.assert_close(loss(emb, labels), expected)
    loss.reduction = "sum"
    torch.testing.assert_close(loss(emb, labels), expected.sum())
    loss.reduction = "mean"
    torch.testing.assert_close(loss(emb, labels), expected.mean())


def test_fallback_branch_beyond_pi_minus_m():
    # embeddings opposite to their class centre: theta > pi - m, the fallback cos(theta) - m sin(m) is used
    loss = _make(ArcFaceLoss, reduction="none", scale=8.0)
    labels = torch.tensor([0, 1, 2])
    emb = -loss.weight.detach()[labels] + 0.05 * torch.randn(3, D, dtype=torch.float64)
    expected = brute_force(emb, labels, loss.weight.detach(), 8.0, 1.0, 0.5, 0.0)
    torch.testing.assert_close(loss(emb, labels), expected)
    # margin_grad=False (insightface arcface_torch): no fallback, cos(theta + m) for every theta
    loss.margin_grad = False
    expected_nf = brute_force(emb, labels, loss.weight.detach(), 8.0, 1.0, 0.5, 0.0, fallback=False)
    torch.testing.assert_close(loss(emb, labels), expected_nf)
    assert not torch.allclose(expected, expected_nf)


@pytest.mark.parametrize("cls,kw,params", SETTINGS, ids=IDS)
def test_gradcheck_and_gradient_vs_reference(cls, kw, params):
    emb, labels = _data(b=4)
    loss = _make(cls, scale=4.0, **{k: v for k, v in kw.items() if k != "scale"})
    emb.requires_grad_()
    assert torch.autograd.gradcheck(lambda e, w: loss(e, labels), (emb, loss.weight))
    loss.weight.grad = None
    loss(emb, labels).backward()
    w2 = loss.weight.detach().clone().requires_grad_()
    e2 = emb.detach().clone().requires_grad_()
    torch.nn.functional.cross_entropy(_logits_via(loss, e2, w2, labels), labels).backward()
    torch.testing.assert_close(emb.grad, e2.grad)
    torch.testing.assert_close(loss.weight.grad, w2.grad)


def _logits_via(loss, e, w, labels):
    """Reference logits written independently with plain torch ops (textbook margin, differentiable)."""
    cos = torch.nn.functional.normalize(e, dim=1) @ torch.nn.functional.normalize(w, dim=1).t()
    ct = cos.gather(1, labels[:, None]).squeeze(1)
    theta = torch.acos(ct)
    phi = torch.where(loss.m1 * theta + loss.m2 <= math.pi, torch.cos(loss.m1 * theta + loss.m2) - loss.m3,
                      ct - loss.m2 * math.sin(loss.m2) - loss.m3)
    onehot = torch.nn.functional.one_hot(labels, cos.shape[1]).bool()
    return loss.scale * torch.where(onehot, phi[:, None], cos)


@pytest.mark.parametrize("cls", [ArcFaceLoss, CombinedMarginLoss])
def test_margin_grad_false_is_straight_through(cls):
    """insightface arcface_torch: forward value cos(theta + m), backward d logit / d cos = 1."""
    emb, labels = _data(seed=4)
    loss = _make(cls, margin_grad=False)
    e1 = emb.clone().requires_grad_()
    w1 = loss.weight
    out = loss(e1, labels)
    out.backward()
    # reference: logits = s * (cos + onehot * stopgrad(phi - cos))
    e2 = emb.clone().requires_grad_()
    w2 = loss.weight.detach().clone().requires_grad_()
    cos = torch.nn.functional.normalize(e2, dim=1) @ torch.nn.functional.normalize(w2, dim=1).t()
    ct = cos.gather(1, labels[:, None]).squeeze(1)
    phi = torch.cos(loss.m1 * torch.acos(ct) + loss.m2) - loss.m3
    onehot = torch.nn.functional.one_hot(labels, C).to(cos.dtype)
    ref = torch.nn.functional.cross_entropy(loss.scale * (cos + onehot * (phi - ct).detach()[:, None]), labels)
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(e1.grad, e2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)
    # same forward value as the textbook form (no theta > pi - m here), different gradient
    loss_t = _make(cls, margin_grad=True)
    e3 = emb.clone().requires_grad_()
    out_t = loss_t(e3, labels)
    out_t.backward()
    torch.testing.assert_close(out_t, out)
    assert not torch.allclose(e3.grad, e1.grad)


def test_cosface_modes_identical():
    emb, labels = _data(seed=5)
    grads = []
    for mg in (True, False):
        e = emb.clone().requires_grad_()
        _make(CosFaceLoss, margin_grad=mg)(e, labels).backward()
        grads.append(e.grad)
    torch.testing.assert_close(*grads)


@pytest.mark.parametrize("cls", [ArcFaceLoss, CosFaceLoss, CombinedMarginLoss])
@pytest.mark.parametrize("margin_grad", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_theta_near_zero_and_pi_finite_grads(cls, margin_grad, dtype):
    loss = _make(cls, dtype=dtype, margin_grad=margin_grad)
    labels = torch.tensor([0, 1, 2, 3])
    w = loss.weight.detach()
    emb = torch.stack([w[0], 3.0 * w[1], -w[2], -2.0 * w[3]]).clone().requires_grad_()  # theta = 0, 0, pi, pi
    out = loss(emb, labels)
    assert torch.isfinite(out)
    out.backward()
    assert torch.isfinite(emb.grad).all() and torch.isfinite(loss.weight.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_forward_finite(dtype):
    emb, labels = _data(b=32, dtype=torch.float32)
    for cls in (ArcFaceLoss, CosFaceLoss, CombinedMarginLoss):
        loss = cls(D, C, subcenters=2).to(dtype)
        e = emb.to(dtype).requires_grad_()
        out = loss(e, labels)
        assert torch.isfinite(out)
        out.backward()
        assert torch.isfinite(e.grad.float()).all()
        ref = brute_force(e.detach().double(), labels, loss.weight.detach().double(), loss.scale, loss.m1,
                          loss.m2, loss.m3, k=2).mean()
        assert out.item() == pytest.approx(ref.item(), rel=0.05)


def test_logits_are_scaled_cosines_and_weight_is_parameter():
    emb, labels = _data()
    loss = _make(ArcFaceLoss, subcenters=2)
    assert isinstance(loss.weight, torch.nn.Parameter) and loss.weight.shape == (C * 2, D)
    assert any(p is loss.weight for p in loss.parameters())
    logits = loss.logits(emb)
    w = loss.weight.detach()
    for i in range(B):
        for c in range(C):
            best = max(float(torch.dot(emb[i], w[c * 2 + j]) / (emb[i].norm() * w[c * 2 + j].norm()))
                       for j in range(2))
            assert logits[i, c].item() == pytest.approx(64.0 * best, rel=1e-10)


# ---- pytorch-metric-learning -----------------------------------------------------------------------
try:
    from pytorch_metric_learning import losses as pml_losses
except ImportError:  # pragma: no cover - dev extra
    if os.environ.get("CI"):  # CI installs .[dev]: a missing reference must fail the run, not skip
        raise
    pml_losses = None
needs_pml = pytest.mark.skipif(pml_losses is None, reason="pytorch-metric-learning (dev extra) is not installed")


@needs_pml
@pytest.mark.parametrize("theta_far", [False, True])
def test_pml_arcface(theta_far):
    emb, labels = _data(b=16, d=8, c=10, seed=7)
    ours = ArcFaceLoss(8, 10, scale=64.0, margin=0.5).double()
    pml = pml_losses.ArcFaceLoss(num_classes=10, embedding_size=8, margin=math.degrees(0.5), scale=64).double()
    with torch.no_grad():
        pml.W.copy_(ours.weight.t())  # PML stores W as [D, C]
        if theta_far:  # half of the samples beyond pi - m (PML's fallback branch)
            emb[:8] = -ours.weight[labels[:8]] + 0.1 * emb[:8]
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    a, b = ours(e1, labels), pml(e2, labels)
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    torch.testing.assert_close(e1.grad, e2.grad)
    torch.testing.assert_close(ours.weight.grad, pml.W.grad.t())


@needs_pml
def test_pml_cosface():
    emb, labels = _data(b=16, d=8, c=10, seed=8)
    ours = CosFaceLoss(8, 10).double()
    pml = pml_losses.CosFaceLoss(num_classes=10, embedding_size=8, margin=0.35, scale=64).double()
    with torch.no_grad():
        pml.W.copy_(ours.weight.t())
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    a, b = ours(e1, labels), pml(e2, labels)
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    torch.testing.assert_close(e1.grad, e2.grad)


def test_bad_inputs_and_registry():
    loss = build("arcface", embedding_dim=D, num_classes=C)
    assert isinstance(loss, ArcFaceLoss) and loss.scale == 64.0 and loss.margin == 0.5
    assert build("cosface", embedding_dim=D, num_classes=C).margin == 0.35
    emb, labels = _data(dtype=torch.float32)
    with pytest.raises(ValueError, match="labels"):
        loss(emb, labels + C)
    with pytest.raises(ValueError, match="labels"):
        loss(emb, labels - 10)
    with pytest.raises(ValueError, match="embedding_dim"):
        loss(emb[:, :3], labels)
    with pytest.raises(ValueError, match="labels"):
        loss(emb, labels[:2])
    with pytest.raises(ValueError, match="embeddings"):
        loss(emb.index_fill(0, torch.tensor([0]), float("inf")), labels)
    for kw, arg in [({"margin": -0.1}, "margin"), ({"scale": 0.0}, "scale"), ({"subcenters": 0}, "subcenters"),
                    ({"margin": 4.0}, "margin")]:
        with pytest.raises(ValueError, match=arg):
            ArcFaceLoss(D, C, **kw)
    with pytest.raises(ValueError, match="num_classes"):
        ArcFaceLoss(D, 0)
    with pytest.raises(ValueError, match="m1"):
        CombinedMarginLoss(D, C, m1=0.0)
    with pytest.raises(ValueError, match="m3"):
        CombinedMarginLoss(D, C, m3=-0.2)


# ---- stateless margins: (cos_theta [B, C], labels [B]) -> logits --------------------------------------
@pytest.mark.parametrize("margin,params", [
    (ArcFace(), (64.0, 1.0, 0.5, 0.0)), (ArcFace(scale=30.0, margin=0.3), (30.0, 1.0, 0.3, 0.0)),
    (CosFace(), (64.0, 1.0, 0.0, 0.35)), (CombinedMargin(), (64.0, 1.0, 0.3, 0.2)),
])
def test_margin_is_a_stateless_logit_transform(margin, params):
    s, m1, m2, m3 = params
    assert list(margin.parameters()) == [] and list(margin.buffers()) == []
    g = torch.Generator().manual_seed(2)
    cos = torch.rand(5, C, generator=g, dtype=torch.float64) * 2 - 1
    cos[0, 3] = -0.99  # theta > pi - m: fallback
    labels = torch.tensor([3, 0, 6, 2, 2])
    before = cos.clone()
    logits = margin(cos, labels)
    assert torch.equal(cos, before)  # the input is not modified
    for i in range(5):
        for c in range(C):
            x = cos[i, c].item()
            if c == labels[i]:
                t = math.acos(x)
                x = math.cos(m1 * t + m2) - m3 if m1 * t + m2 <= math.pi else x - m2 * math.sin(m2) - m3
            assert logits[i, c].item() == pytest.approx(s * x, abs=1e-9)


def test_loss_composes_classifier_margin_and_cross_entropy():
    emb, labels = _data()
    loss = _make(ArcFaceLoss, reduction="none")
    assert isinstance(loss, NormalisedClassifier) and isinstance(loss.margin_logits, ArcFace)
    expected = torch.nn.functional.cross_entropy(loss.margin_logits(loss.cosine(emb), labels), labels,
                                                reduction="none")
    torch.testing.assert_close(loss(emb, labels), expected)
    assert [n for n, _ in loss.named_parameters()] == ["weight"]  # checkpoints keep the key loss.weight
