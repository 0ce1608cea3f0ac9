"""ValidationLoss (seed 002, Eq. 3) against a brute-force loop and against Eq. 3's gradients."""
from __future__ import annotations

import math

import pytest
import torch

from zoo.losses import L1Loss, L2Loss, ValidationLoss, WingLoss, build


def brute_force(pred, val, target, weight, coord_fn, dist="manhattan", w=1.0):
    """Returns per-sample (total, coord, validation) lists: weighted means over landmarks."""
    B, L, _ = pred.shape
    tot, co, va = [], [], []
    for b in range(B):
        num_c = num_v = den = 0.0
        for j in range(L):
            wj = 1.0 if weight is None else float(weight[b, j] if weight.dim() == 2 else weight[j])
            if wj == 0:
                continue
            ex, ey = float(pred[b, j, 0] - target[b, j, 0]), float(pred[b, j, 1] - target[b, j, 1])
            d = abs(ex) + abs(ey) if dist == "manhattan" else math.sqrt(ex * ex + ey * ey)
            num_c += wj * (coord_fn(ex) + coord_fn(ey))
            num_v += wj * 0.5 * (d - float(val[b, j])) ** 2
            den += wj
        c = num_c / den if den else 0.0
        v = num_v / den if den else 0.0
        co.append(c)
        va.append(v)
        tot.append(c + w * v)
    return [torch.tensor(x, dtype=torch.float64) for x in (tot, co, va)]


def _inputs(B=3, L=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(B, L, 2, generator=g, dtype=torch.float64) * 3
    target = torch.randn(B, L, 2, generator=g, dtype=torch.float64) * 3
    val = torch.rand(B, L, generator=g, dtype=torch.float64) * 4
    return pred, val, target


@pytest.mark.parametrize("dist", ["manhattan", "euclidean"])
@pytest.mark.parametrize("weight_kind", ["none", "mask", "float"])
def test_matches_brute_force(dist, weight_kind):
    pred, val, target = _inputs()
    weight = {"none": None, "mask": torch.tensor([[True, False, True, True, False, True], [False] * 6,
                                                  [True] * 6]),
              "float": torch.rand(6, dtype=torch.float64)}[weight_kind]
    tot, co, va = brute_force(pred, val, target, weight, lambda e: 0.5 * e * e, dist, w=0.3)
    out = ValidationLoss("l2", distance=dist, weight=0.3, reduction="none")(pred, val, target, weight)
    for got, exp in zip(out, (tot, co, va)):
        torch.testing.assert_close(got, exp)
    out = ValidationLoss("l2", distance=dist, weight=0.3)(pred, val, target, weight)
    torch.testing.assert_close(out.total, tot.mean())
    torch.testing.assert_close(out.validation, va.mean())
    out = ValidationLoss("l2", distance=dist, weight=0.3, reduction="sum")(pred, val, target, weight)
    torch.testing.assert_close(out.coord, co.sum())


def test_gradients_follow_eq3():
    """Eq. 3: coordinates get only the coordinate loss gradient; the validation neuron gets d - v."""
    pred, val, target = _inputs(B=2, L=4)
    pred.requires_grad_()
    val.requires_grad_()
    out = ValidationLoss("l2", reduction="sum")(pred, val, target)
    out.total.backward()
    L = 4
    # d/dv of sum_b mean_j 1/2 (d - v)^2 = -(d - v) / L ; d = Manhattan distance, detached
    d = (pred.detach() - target).abs().sum(-1)
    torch.testing.assert_close(val.grad, -(d - val.detach()) / L)
    # d/dpred of 1/2 (p - g)^2 summed over x,y and averaged over landmarks = (p - g) / L
    torch.testing.assert_close(pred.grad, (pred.detach() - target) / L)


def test_gradcheck_float64():
    """Gradcheck w.r.t. the validation signal (the target d is a constant by design, so the pred gradient is
    checked against the coordinate loss alone, which gradcheck covers in test_landmark)."""
    pred, val, target = _inputs(B=2, L=3)
    val.requires_grad_()
    w = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    loss = ValidationLoss("wing", weight=0.5)
    assert torch.autograd.gradcheck(lambda v: loss(pred, v, target, w).total, (val,))
    p = pred.clone().requires_grad_()
    loss(p, val.detach(), target, w).total.backward()
    q = pred.clone().requires_grad_()
    WingLoss()(q, target, w).backward()
    torch.testing.assert_close(p.grad, q.grad)


def test_runtime_swap_of_coord_loss_and_weight():
    pred, val, target = _inputs()
    loss = ValidationLoss()  # paper defaults: L2 coordinates, Manhattan, weight 1
    assert isinstance(loss.coord_loss, L2Loss) and loss.weight == 1.0
    loss.coord_loss = "l1"
    assert isinstance(loss.coord_loss, L1Loss)
    loss.weight = 0.0
    tot, co, _ = brute_force(pred, val, target, None, abs, w=0.0)
    out = loss(pred, val, target)
    torch.testing.assert_close(out.total, tot.mean())
    loss.coord_loss = WingLoss(omega=5.0, epsilon=1.0)
    loss.weight = 2.0
    tot, _, _ = brute_force(pred, val, target, None, lambda e: (5 * math.log(1 + abs(e)) if abs(e) < 5
                                                                 else abs(e) - (5 - 5 * math.log(6))), w=2.0)
    torch.testing.assert_close(loss(pred, val, target).total, tot.mean())
    with pytest.raises(ValueError, match="coord_loss"):
        loss.coord_loss = "arcface"
    with pytest.raises(ValueError, match="coord_loss"):
        loss.coord_loss = torch.nn.MSELoss()


def test_callable_distance_and_registry():
    pred, val, target = _inputs()
    cheb = lambda p, t: (p - t).abs().amax(-1)  # noqa: E731
    out = build("validation", coord_loss="l2", distance=cheb, reduction="none")(pred, val, target)
    d = (pred - target).abs().amax(-1)
    torch.testing.assert_close(out.validation, (0.5 * (d - val) ** 2).mean(-1))
    bad = ValidationLoss(distance=lambda p, t: (p - t).abs().sum(-1).sum(-1))
    with pytest.raises(ValueError, match="distance"):
        bad(pred, val, target)


def test_empty_mask_half_precision_and_huge_errors():
    pred, val, target = _inputs()
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[0] = False
    target = target.clone()
    target[0] = float("nan")
    pred = pred.clone().requires_grad_()
    out = ValidationLoss(reduction="none")(pred, val, target, mask)
    assert out.total[0].item() == 0.0 and torch.isfinite(out.total).all()
    out.total.sum().backward()
    assert torch.isfinite(pred.grad).all()
    for dtype in (torch.float16, torch.bfloat16):
        p = (torch.zeros(2, 5, 2) + 1e4).to(dtype).requires_grad_()
        o = ValidationLoss("wing")(p, torch.zeros(2, 5, dtype=dtype), torch.zeros(2, 5, 2, dtype=dtype))
        assert all(torch.isfinite(x) for x in o)
        o.total.backward()
        assert torch.isfinite(p.grad.float()).all()


def test_bad_inputs():
    pred, val, target = _inputs()
    with pytest.raises(ValueError, match="validation"):
        ValidationLoss()(pred, val[:, :5], target)
    with pytest.raises(ValueError, match="validation"):
        ValidationLoss()(pred, val.index_fill(0, torch.tensor([0]), float("nan")), target)
    with pytest.raises(ValueError, match="target"):
        ValidationLoss()(pred, val, target[:2])
    with pytest.raises(ValueError, match="weight"):
        ValidationLoss(weight=-1.0)
    with pytest.raises(ValueError, match="distance"):
        ValidationLoss(distance="chebyshev")
    with pytest.raises(ValueError, match="coord_loss"):
        ValidationLoss(coord_loss="nope")


def test_log_distance_target_matches_a_loop():
    pred, val, target = _inputs()
    eps = 0.5
    out = ValidationLoss("l1", weight=2.0, reduction="none", target="log_distance", eps=eps)(pred, val, target)
    for b in range(pred.shape[0]):
        terms = []
        for j in range(pred.shape[1]):
            d = abs(float(pred[b, j, 0] - target[b, j, 0])) + abs(float(pred[b, j, 1] - target[b, j, 1]))
            terms.append(0.5 * (math.log(d + eps) - math.log(float(val[b, j]) + eps)) ** 2)
        assert float(out.validation[b]) == pytest.approx(sum(terms) / len(terms))
        assert float(out.total[b]) == pytest.approx(float(out.coord[b]) + 2.0 * sum(terms) / len(terms))
    # the gradient reaches only the validation signal: coordinates get the coordinate loss's gradient alone
    p = pred.clone().requires_grad_(True)
    v = val.clone().requires_grad_(True)
    ValidationLoss("l1", target="log_distance", eps=eps)(p, v, target).total.backward()
    p2 = pred.clone().requires_grad_(True)
    ValidationLoss("l1", weight=0.0)(p2, val, target).total.backward()
    torch.testing.assert_close(p.grad, p2.grad)
    assert v.grad.abs().sum() > 0


@pytest.mark.parametrize("kw, match", [({"target": "squared"}, "target"), ({"eps": 0.0}, "eps"),
                                       ({"eps": -1.0}, "eps")])
def test_bad_target_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        ValidationLoss(**kw)


def test_log_distance_needs_validation_above_minus_eps():
    pred, val, target = _inputs()
    with pytest.raises(ValueError, match="log_distance"):
        ValidationLoss(target="log_distance", eps=1.0)(pred, val - 10.0, target)
