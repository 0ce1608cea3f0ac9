"""Losses of the identity/attribute GAN (seed 003 Eqs. 1, 3-6) against hand computation and plain loops."""
import math

import numpy as np
import pytest
import torch

from zoo.gan.identity import (discriminator_loss, feature_matching_loss, generator_gan_loss, identity_loss, kl_loss,
                              multiscale_reconstruction_loss)


def test_identity_loss_hand_case():
    # a = (3, 4) -> (0.6, 0.8); b = (1, 0): ||(−0.4, 0.8)||² = 0.16 + 0.64 = 0.8, half = 0.4
    # second sample: identical directions (2,0) and (5,0) -> 0
    a = torch.tensor([[3.0, 4.0], [2.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [5.0, 0.0]])
    assert identity_loss(a, b, reduction="none").tolist() == pytest.approx([0.4, 0.0])
    assert identity_loss(a, b).item() == pytest.approx(0.2)
    # opposite unit vectors: ½·4 = 2 (the largest value)
    assert identity_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, -7.0]])).item() == pytest.approx(2.0)


def test_kl_hand_case_and_zero_at_prior():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # sample 1: ½[(1 + 1 − 1 − 0) + (2 + 0 − 1 − ln 2)] = ½[1 + 1 − ln 2]
    expected = 0.5 * (2.0 - math.log(2.0))
    assert kl_loss(mu, logvar, reduction="none").tolist() == pytest.approx([expected, 0.0])
    # closed-form KL(N(mu, s²) || N(0, 1)) per dimension from torch.distributions (independent reference)
    m, lv = torch.randn(4, 6), torch.randn(4, 6)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m, (0.5 * lv).exp()),
                                            torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl_loss(m, lv, reduction="none"), ref, atol=1e-5)


def test_multiscale_reconstruction_loop_reference():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 8, 8)
    outs = [torch.rand(2, 3, 2, 2), torch.rand(2, 3, 4, 4), torch.rand(2, 3, 8, 8)]
    # reference: box averages by explicit loops
    ref = np.zeros(2)
    t = target.numpy()
    for o in outs:
        s = o.shape[-1]
        k = 8 // s
        down = np.zeros((2, 3, s, s))
        for i in range(s):
            for j in range(s):
                down[:, :, i, j] = t[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].mean((2, 3))
        ref += ((down - o.numpy()) ** 2).reshape(2, -1).sum(1)
    ref /= 2 * len(outs)
    got = multiscale_reconstruction_loss(target, outs, reduction="none")
    assert got.numpy() == pytest.approx(ref, rel=1e-5)
    # pixels="mean": each scale's squared norm divided by its element count
    ref_mean = sum(((torch.nn.functional.avg_pool2d(target, 8 // o.shape[-1]) - o) ** 2).flatten(1).mean(1)
                   for o in outs) / (2 * len(outs))
    assert torch.allclose(multiscale_reconstruction_loss(target, outs, pixels="mean", reduction="none"), ref_mean)


def test_multiscale_hand_case_single_pixel():
    # one 1x1 output of value 0 against a 2x2 target of ones: area-resize -> 1; ½·1² = 0.5 over N=1 scale
    target = torch.ones(1, 1, 2, 2)
    assert multiscale_reconstruction_loss(target, [torch.zeros(1, 1, 1, 1)]).item() == pytest.approx(0.5)


def test_feature_matching_hand_case_and_gradient_side():
    real = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    fake = torch.tensor([[1.0, 0.0, 5.0]], requires_grad=True)
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(0.5 * (0 + 4 + 4))
    loss.backward()
    assert real.grad is None or torch.all(real.grad == 0)  # the real side is a fixed target
    assert fake.grad[0].tolist() == pytest.approx([0.0, -2.0, 2.0])


def test_discriminator_and_generator_gan_loss_hand_case():
    lr, lf = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = [-math.log(0.5) - math.log(0.5), -math.log(sig(2.0)) - math.log(1 - sig(-1.0))]
    assert discriminator_loss(lr, lf, reduction="none").tolist() == pytest.approx(expected)
    assert generator_gan_loss(torch.tensor([1.0])).item() == pytest.approx(-math.log(sig(1.0)))


def test_bad_shapes_fail():
    with pytest.raises(ValueError, match="identity_loss"):
        identity_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="pixels"):
        multiscale_reconstruction_loss(torch.zeros(1, 3, 4, 4), [torch.zeros(1, 3, 4, 4)], pixels="max")
    with pytest.raises(ValueError, match="does not match"):
        multiscale_reconstruction_loss(torch.zeros(1, 3, 4, 4), [torch.zeros(1, 1, 4, 4)])
