"""Landmark regression losses against per-element brute-force references (Python floats, math module)."""
from __future__ import annotations

import math

import pytest
import torch

from zoo.losses import AdaptiveWingLoss, L1Loss, L2Loss, SmoothL1Loss, SoftWingLoss, WingLoss


# ---- independent scalar references ------------------------------------------------------------------
def ref_l1(e):
    return abs(e)


def ref_l2(e):
    return 0.5 * e * e


def ref_smooth_l1(e, beta=1.0):
    a = abs(e)
    return 0.5 * a * a / beta if a < beta else a - 0.5 * beta


def ref_wing(e, w=10.0, eps=2.0):
    a = abs(e)
    c = w - w * math.log(1 + w / eps)
    return w * math.log(1 + a / eps) if a < w else a - c


def ref_soft_wing(e, w1=2.0, w2=20.0, eps=0.5):
    a = abs(e)
    b = w1 - w2 * math.log(1 + w1 / eps)
    return a if a < w1 else w2 * math.log(1 + a / eps) + b


def ref_awing(e, alpha=2.1, w=14.0, eps=1.0, theta=0.5, y=0.0):
    a = abs(e)
    p = alpha - y
    A = w * (1 / (1 + (theta / eps) ** p)) * p * (theta / eps) ** (p - 1) * (1 / eps)
    C = theta * A - w * math.log(1 + (theta / eps) ** p)
    return w * math.log(1 + (a / eps) ** p) if a < theta else A * a - C


CASES = [
    (L1Loss, {}, ref_l1),
    (L2Loss, {}, ref_l2),
    (SmoothL1Loss, {}, ref_smooth_l1),
    (SmoothL1Loss, {"beta": 0.3}, lambda e: ref_smooth_l1(e, 0.3)),
    (WingLoss, {}, ref_wing),
    (WingLoss, {"omega": 5.0, "epsilon": 1.0}, lambda e: ref_wing(e, 5.0, 1.0)),
    (SoftWingLoss, {}, ref_soft_wing),
    (AdaptiveWingLoss, {}, ref_awing),
    (AdaptiveWingLoss, {"theta": 3.0, "target_value": 0.5}, lambda e: ref_awing(e, theta=3.0, y=0.5)),
]
IDS = [f"{c.__name__}{kw}" for c, kw, _ in CASES]


def brute_force(ref, pred, target, weight):
    """Per sample: sum over x,y per landmark, weighted mean over landmarks (0 if all weights are 0)."""
    B, L, _ = pred.shape
    out = []
    for b in range(B):
        num = den = 0.0
        for j in range(L):
            w = 1.0 if weight is None else float(weight[b, j] if weight.dim() == 2 else weight[j])
            if w == 0:
                continue
            lj = sum(ref(float(pred[b, j, k] - target[b, j, k])) for k in range(2))
            num += w * lj
            den += w
        out.append(num / den if den > 0 else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def _inputs(B=3, L=5, scale=8.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(B, L, 2, generator=g, dtype=torch.float64) * scale
    target = torch.randn(B, L, 2, generator=g, dtype=torch.float64) * scale
    return pred, target


def _weights(B=3, L=5):
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(B, L, generator=g) > 0.4
    mask[1] = False  # one sample with no visible landmark
    return [None, torch.rand(L, generator=g, dtype=torch.float64), torch.rand(B, L, generator=g,
                                                                             dtype=torch.float64), mask]


@pytest.mark.parametrize("cls,kw,ref", CASES, ids=IDS)
def test_matches_brute_force_all_reductions_and_weights(cls, kw, ref):
    pred, target = _inputs()
    for weight in _weights():
        expected = brute_force(ref, pred, target, weight)
        none = cls(reduction="none", **kw)(pred, target, weight)
        assert none.shape == (3,)
        torch.testing.assert_close(none, expected, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(cls(reduction="sum", **kw)(pred, target, weight), expected.sum())
        torch.testing.assert_close(cls(**kw)(pred, target, weight), expected.mean())


@pytest.mark.parametrize("cls,kw,ref", CASES, ids=IDS)
def test_gradcheck_float64(cls, kw, ref):
    # errors well away from the kinks (0, beta, omega, theta) so finite differences are valid
    errs = torch.tensor([[0.7, -1.6], [2.9, -4.4], [12.5, -0.25], [0.37, 7.3]], dtype=torch.float64)
    target = torch.randn(2, 4, 2, dtype=torch.float64)
    pred = (target + errs.unsqueeze(0) * torch.tensor([1.0, 1.3], dtype=torch.float64).view(2, 1, 1))
    pred.requires_grad_()
    w = torch.tensor([0.5, 1.0, 0.0, 2.0], dtype=torch.float64)
    loss = cls(**kw)
    assert torch.autograd.gradcheck(lambda p: loss(p, target, w), (pred,))


@pytest.mark.parametrize("cls,kw,ref", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_stays_finite(cls, kw, ref, dtype):
    pred, target = _inputs(scale=1.0)
    pred = pred.to(dtype)
    pred[0, 0, 0] = 1e4  # huge error in half precision
    pred.requires_grad_()
    out = cls(**kw)(pred, target.to(dtype))
    assert torch.isfinite(out)
    out.backward()
    assert torch.isfinite(pred.grad.float()).all()
    expected = brute_force(ref, pred.detach().double(), target.to(dtype).double(), None).mean()
    torch.testing.assert_close(out.double(), expected, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("cls,kw,ref", CASES, ids=IDS)
def test_edge_cases_zero_huge_and_empty_mask(cls, kw, ref):
    loss = cls(reduction="none", **kw)
    target = torch.randn(2, 4, 2, dtype=torch.float64)
    # zero error: zero loss, finite (zero) gradient
    pred = target.clone().requires_grad_()
    out = loss(pred, target)
    torch.testing.assert_close(out, torch.zeros(2, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()
    # huge error: finite value and gradient, matches the reference
    pred = (target + 1e4).requires_grad_()
    out = loss(pred, target)
    torch.testing.assert_close(out, brute_force(ref, pred.detach(), target, None))
    out.sum().backward()
    assert torch.isfinite(pred.grad).all()
    # empty mask for sample 0 (with NaN targets there): 0 for that sample, never NaN
    mask = torch.tensor([[False] * 4, [True, False, True, True]])
    target_nan = target.clone()
    target_nan[0] = float("nan")
    target_nan[1, 1] = float("inf")
    pred = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    out = loss(pred, target_nan, mask)
    assert out[0].item() == 0.0 and torch.isfinite(out).all()
    torch.testing.assert_close(out[1], brute_force(ref, pred.detach(), target, mask)[1])
    out.sum().backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[0] == 0).all() and (pred.grad[1, 1] == 0).all()


def test_hand_computed_values():
    p = torch.tensor([[[1.0, 0.0]]])
    t = torch.zeros(1, 1, 2)
    assert WingLoss()(p, t).item() == pytest.approx(10 * math.log(1.5))
    assert L2Loss()(torch.tensor([[[3.0, 4.0]]]), t).item() == pytest.approx(12.5)  # 1/2 (9 + 16)
    assert L1Loss()(torch.tensor([[[3.0, -4.0]]]), t).item() == pytest.approx(7.0)
    assert SoftWingLoss()(torch.tensor([[[1.5, 0.0]]]), t).item() == pytest.approx(1.5)
    # Wing: linear part with C = 10 - 10 ln 6 at |e| = 20
    assert WingLoss()(torch.tensor([[[20.0, 0.0]]]), t).item() == pytest.approx(20 - (10 - 10 * math.log(6)))


def test_smooth_l1_matches_torch():
    pred, target = _inputs(B=4, L=7, scale=1.0)
    ours = SmoothL1Loss(beta=0.5, reduction="none")(pred, target)
    theirs = torch.nn.functional.smooth_l1_loss(pred, target, beta=0.5, reduction="none").sum(-1).mean(-1)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("cls,kw,at", [(WingLoss, {}, 10.0), (SoftWingLoss, {}, 2.0),
                                       (AdaptiveWingLoss, {}, 0.5)])
def test_continuous_at_switch_point(cls, kw, at):
    loss = cls(**kw)
    below = torch.tensor([at - 1e-9], dtype=torch.float64, requires_grad=True)
    above = torch.tensor([at + 1e-9], dtype=torch.float64, requires_grad=True)
    fb, fa = loss.elementwise(below), loss.elementwise(above)
    assert fb.item() == pytest.approx(fa.item(), abs=1e-6)
    if cls is AdaptiveWingLoss:  # AWing is also C1 at theta
        fb.backward()
        fa.backward()
        assert below.grad.item() == pytest.approx(above.grad.item(), rel=1e-6)


@pytest.mark.parametrize("cls,kw,arg", [
    (WingLoss, {"omega": 0.0}, "omega"), (WingLoss, {"epsilon": -1.0}, "epsilon"),
    (SoftWingLoss, {"omega1": -2.0}, "omega1"), (SmoothL1Loss, {"beta": 0.0}, "beta"),
    (AdaptiveWingLoss, {"theta": 0.0}, "theta"), (AdaptiveWingLoss, {"target_value": 1.5}, "target_value"),
    (L2Loss, {"reduction": "avg"}, "reduction"), (WingLoss, {"omega": float("nan")}, "omega"),
])
def test_bad_constructor_arguments(cls, kw, arg):
    with pytest.raises(ValueError, match=arg):
        cls(**kw)


@pytest.mark.parametrize("make,arg", [
    (lambda p, t: (p[..., :1], t[..., :1], None), "pred"),
    (lambda p, t: (p, t[:2], None), "target"),
    (lambda p, t: (p, t, torch.ones(5)), "weight"),
    (lambda p, t: (p, t, -torch.ones(3, 4)), "weight"),
    (lambda p, t: (p.index_fill(0, torch.tensor([0]), float("nan")), t, None), "pred"),
    (lambda p, t: (p, t.index_fill(1, torch.tensor([2]), float("inf")), None), "target"),
    (lambda p, t: (p.reshape(3, 8), t.reshape(3, 8), None), "pred"),
])
def test_bad_tensor_inputs(make, arg):
    p, t = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    with pytest.raises(ValueError, match=arg):
        WingLoss()(*make(p, t))
