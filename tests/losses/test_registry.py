"""zoo.losses.build / available and the package's public names."""
from __future__ import annotations

import math

import pytest
import torch

import zoo.losses as L
from zoo.losses.landmark import LANDMARK_LOSSES
from zoo.losses.registry import LOSSES

EXPECTED = ["adaptive_wing", "arcface", "combined_margin", "cosface", "l1", "l2", "smooth_l1", "soft_wing",
            "triplet", "validation", "wing"]


def test_available_names():
    assert L.available() == EXPECTED


def _landmarks(errors):
    """pred [1, L, 2] with coordinate errors ``errors`` against a zero target."""
    pred = torch.tensor(errors, dtype=torch.float64).view(1, -1, 2)
    return pred, torch.zeros_like(pred)


def _angle(t):
    return [math.cos(t), math.sin(t)]


def _ce(logits, y=0):
    return math.log(sum(math.exp(v) for v in logits)) - logits[y]


# name -> (kwargs, call(loss) -> value, value computed by hand from the formula + defaults of docs/losses.md)
_aw_A = 14 * 2.1 * 0.5 ** 1.1 / (1 * (1 + 0.5 ** 2.1))
HAND = {
    "l1": ({}, lambda f: f(*_landmarks([3.0, -4.0])), 7.0),
    "l2": ({}, lambda f: f(*_landmarks([3.0, -4.0])), 12.5),
    "smooth_l1": ({}, lambda f: f(*_landmarks([0.5, 3.0])), 0.125 + 2.5),
    "wing": ({}, lambda f: f(*_landmarks([1.0, 20.0])), 10 * math.log(1.5) + 20 - (10 - 10 * math.log(6))),
    "soft_wing": ({}, lambda f: f(*_landmarks([1.0, 3.0])), 1 + 20 * math.log(7) + 2 - 20 * math.log(5)),
    "adaptive_wing": ({}, lambda f: f(*_landmarks([0.25, 2.0])),
                      14 * math.log1p(0.25 ** 2.1) + _aw_A * 2 - (0.5 * _aw_A - 14 * math.log1p(0.5 ** 2.1))),
    # coord l2 = 1/2; Manhattan d = 1, v = 0.5: 1/2 (d - v)^2 = 0.125; weight 1
    "validation": ({}, lambda f: f(*_landmarks([1.0, 0.0])[:1], torch.tensor([[0.5]], dtype=torch.float64),
                                   _landmarks([1.0, 0.0])[1]).total, 0.625),
    # unit vectors at angles 0 (a), 0.5 (p, same id), 0.6 (n): one semi-hard triplet, d = 2 - 2 cos
    "triplet": ({}, lambda f: f(torch.tensor([_angle(0.0), _angle(0.5), _angle(0.6)], dtype=torch.float64),
                                torch.tensor([0, 0, 1])), (2 - 2 * math.cos(0.5)) - (2 - 2 * math.cos(0.6)) + 0.2),
}
def _margin_case(loss):
    """Class c's centre is e_c; one embedding at angle 0.3 from class 0, labelled 0."""
    loss = loss.double()
    with torch.no_grad():
        loss.weight.copy_(torch.eye(2, dtype=torch.float64))
    return loss(torch.tensor([_angle(0.3)], dtype=torch.float64), torch.tensor([0]))


for _name, _target in (("arcface", 64 * math.cos(0.3 + 0.5)), ("cosface", 64 * (math.cos(0.3) - 0.35)),
                       ("combined_margin", 64 * (math.cos(0.3 + 0.3) - 0.2))):
    HAND[_name] = ({"embedding_dim": 2, "num_classes": 2}, _margin_case, _ce([_target, 64 * math.sin(0.3)]))


@pytest.mark.parametrize("name", L.available())
def test_build_every_name_with_defaults_matches_its_formula(name):
    assert name in HAND, f"add a hand-computed case for the new loss {name!r}"
    kwargs, call, expected = HAND[name]
    loss = L.build(name, **kwargs)
    assert L.build(name, **kwargs).__class__ is LOSSES[name]
    assert float(call(loss).detach()) == pytest.approx(expected, rel=1e-9)


def test_build_passes_keyword_arguments():
    assert L.build("wing", omega=5.0).omega == 5.0
    assert L.build("smooth_l1", beta=0.5).beta == 0.5


def _empty_inputs(name):
    if name == "validation":
        return torch.zeros(0, 3, 2, requires_grad=True), torch.zeros(0, 3, requires_grad=True), torch.zeros(0, 3, 2)
    if name in LANDMARK_LOSSES:
        return torch.zeros(0, 3, 2, requires_grad=True), torch.zeros(0, 3, 2)
    return torch.zeros(0, 4, requires_grad=True), torch.zeros(0, dtype=torch.long)


@pytest.mark.parametrize("name", L.available())
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batch_gives_connected_zero_or_empty(name, reduction):
    """B = 0: mean/sum -> 0-d zero with a grad_fn (backward gives zero gradients), none -> an empty [0]."""
    kw = {"embedding_dim": 4, "num_classes": 3} if name in ("arcface", "cosface", "combined_margin") else {}
    loss = L.build(name, reduction=reduction, **kw)
    inputs = _empty_inputs(name)
    out = loss(*inputs)
    out = out.total if name == "validation" else out
    if reduction == "none":
        assert out.shape == (0,)
        return
    assert out.shape == () and out.item() == 0.0 and out.grad_fn is not None
    out.backward()
    params = [p for p in loss.parameters()]
    for t in [*inputs, *params]:
        if t.requires_grad:
            assert t.grad is not None and (t.grad == 0).all()


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="unknown loss 'wingg'.*adaptive_wing.*wing"):
        L.build("wingg")


def test_bad_kwargs_are_value_errors():
    with pytest.raises(ValueError, match="wing"):
        L.build("wing", omegaa=3)
    with pytest.raises(ValueError, match="omega"):
        L.build("wing", omega=-3)


def test_classes_importable_from_package():
    from zoo.losses import (AdaptiveWingLoss, ArcFaceLoss, CombinedMarginLoss, CosFaceLoss, L1Loss,  # noqa: F401
                            L2Loss, SmoothL1Loss, SoftWingLoss, TripletLoss, ValidationLoss, WingLoss)
    assert L.build("wing").__class__ is WingLoss
