import json
import math

import numpy as np
import pytest

from zoo.synth.illumination import (EmpiricalLightPrior, GaussianLightPrior, directional_sh, irradiance, sh_basis,
                                    shade)


def _sphere(n=400):
    # midpoint quadrature on (theta, phi)
    th = (np.arange(n) + 0.5) * math.pi / n
    ph = (np.arange(2 * n) + 0.5) * math.pi / n
    t, p = np.meshgrid(th, ph, indexing="ij")
    w = np.sin(t) * (math.pi / n) ** 2
    d = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    return d, w.ravel()


def test_sh_basis_orthonormal_by_quadrature():
    d, w = _sphere(200)
    y = sh_basis(d)
    gram = (y * w[:, None]).T @ y
    np.testing.assert_allclose(gram, np.eye(9), atol=2e-3)


def test_uniform_environment_renders_albedo():
    light = np.zeros((9, 3))
    light[0] = 2 * math.sqrt(math.pi)  # radiance 1 everywhere
    n = np.random.default_rng(0).normal(size=(50, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    albedo = np.random.default_rng(1).random((50, 3))
    np.testing.assert_allclose(shade(albedo, n, light), albedo, rtol=1e-5)


def test_directional_light_hand_computed():
    # light along +z, intensity 1: c_k = Y_k(z); at n = z the irradiance factor is
    # Y0^2 + (2/3) Y2(z)^2 + (1/4) Y6(z)^2 with Y0 = .282095, Y2(z) = .488603, Y6(z) = .315392 * 2
    light = directional_sh(np.array([0, 0, 1.0]), np.ones(3))
    expected = 0.282095 ** 2 + (2 / 3) * 0.488603 ** 2 + 0.25 * (0.315392 * 2) ** 2
    got = irradiance(np.array([[0, 0, 1.0]]), light)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_irradiance_matches_numerical_integral():
    # for a band-limited environment L = sum c_k Y_k, irradiance/pi = (1/pi) ∫ L(w) max(0, n.w) dw exactly
    rng = np.random.default_rng(3)
    light = rng.normal(size=(9, 3)) * 0.3
    light[0] += 3.0
    d, w = _sphere(300)
    radiance = sh_basis(d) @ light  # [M,3]
    for n in ([0, 0, 1.0], [0.6, 0.0, 0.8], [-0.3, 0.9, -0.3]):
        n = np.array(n) / np.linalg.norm(n)
        ref = ((radiance * (np.maximum(d @ n, 0) * w)[:, None]).sum(0)) / math.pi
        np.testing.assert_allclose(irradiance(n[None], light)[0], ref, rtol=2e-3, atol=2e-3)


def test_gaussian_prior_natural_and_deterministic():
    a, b = GaussianLightPrior(), GaussianLightPrior()
    la, lb = a.sample(np.random.default_rng(5)), b.sample(np.random.default_rng(5))
    np.testing.assert_array_equal(la, lb)
    assert la.shape == (27,)
    # mostly lit from the front: irradiance on a camera-facing normal is positive and of albedo scale
    rng = np.random.default_rng(0)
    e = np.array([irradiance(np.array([[0, 0, 1.0]]), a.sample(rng))[0].mean() for _ in range(200)])
    assert 0.4 < np.median(e) < 2.0
    assert GaussianLightPrior(scale=0).sample(rng) == pytest.approx(a.mean.astype(np.float32), abs=1e-6)


def test_empirical_prior_files(tmp_path):
    arr = np.random.default_rng(0).normal(size=(4, 27))
    np.save(tmp_path / "bip.npy", arr)
    p = EmpiricalLightPrior(tmp_path / "bip.npy")
    assert any(np.allclose(p.sample(np.random.default_rng(i)), arr[j], atol=1e-6) for i in range(3) for j in range(4))
    folder = tmp_path / "json"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"environmentMap": {"coefficients": arr[0].reshape(9, 3).tolist()}}))
    np.testing.assert_allclose(EmpiricalLightPrior(folder).lights[0], arr[0], atol=1e-6)
    np.save(tmp_path / "bad.npy", np.zeros((4, 26)))
    with pytest.raises(ValueError, match="bad.npy"):
        EmpiricalLightPrior(tmp_path / "bad.npy")
    (folder / "b.json").write_text(json.dumps({"foo": 1}))
    with pytest.raises(ValueError, match="b.json.*environmentMap"):
        EmpiricalLightPrior(folder)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        EmpiricalLightPrior(tmp_path / "nowhere.npy")


def test_fused_shading_kernel_matches_numpy_reference():
    rng = np.random.default_rng(4)
    n = rng.normal(size=(300, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    albedo = rng.random((300, 3))
    light = GaussianLightPrior().sample(rng)
    np.testing.assert_allclose(shade(albedo, n, light), albedo * irradiance(n, light), rtol=1e-4, atol=1e-5)
