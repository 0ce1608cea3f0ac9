"""Shapes and contracts of the identity/attribute GAN networks (seed 003 Appendix A)."""
import pytest
import torch

from zoo.gan.identity import AttributeEncoder, Discriminator, Generator, IdentityGAN


@pytest.mark.parametrize("res", [64, 128])
def test_generator_has_every_scale(res):
    G = Generator(identity_dim=16, attr_dim=8, resolution=res, width=4, max_width=16)
    outs = G(torch.randn(2, 16), torch.randn(2, 8))
    sizes = [o.shape[-1] for o in outs]
    assert sizes == [2 ** k for k in range(2, res.bit_length())]  # 4, 8, ..., res (N = 5 at 64, 6 at 128)
    assert all(o.shape[:2] == (2, 3) and o.abs().max() <= 1 for o in outs)
    assert G.synthesize(torch.randn(2, 16), torch.randn(2, 8)).shape == (2, 3, res, res)


def test_encoder_reparametrisation_and_discriminator_features():
    A = AttributeEncoder(64, attr_dim=8, width=4, max_width=16, hidden=32).eval()
    x = torch.randn(3, 3, 64, 64)
    torch.manual_seed(0)
    f, mu, lv = A(x)
    torch.manual_seed(0)
    r = torch.randn_like(mu)
    assert torch.allclose(f, mu + r * torch.exp(0.5 * lv), atol=1e-6)  # Eq. 2
    f0, mu0, _ = A(x, sample=False)
    assert torch.equal(f0, mu0)
    D = Discriminator(64, width=4, max_width=16, feature_dim=24)
    logit, feat = D(x)
    assert logit.shape == (3,) and feat.shape == (3, 24)


def test_identity_gan_samples_unit_vectors():
    g = IdentityGAN(identity_dim=10, noise_dim=4, hidden=8)
    s = g.sample(5)
    assert s.shape == (5, 10) and torch.allclose(s.norm(dim=1), torch.ones(5), atol=1e-5)
    assert g.judge(s).shape == (5,)


def test_bad_resolution_and_inputs():
    with pytest.raises(ValueError, match="power of two"):
        Generator(4, 4, resolution=96)
    G = Generator(4, 4, resolution=8, width=2, max_width=4)
    with pytest.raises(ValueError, match="expected identity"):
        G(torch.zeros(1, 5), torch.zeros(1, 4))
