"""Spherical-harmonics (SH) Lambertian illumination: 9 coefficients per colour channel, 27 in all.

As in the Basel face image generator (Kortylewski et al. 2018/2019, after Ramamoorthi & Hanrahan, "An
efficient representation for irradiance environment maps", SIGGRAPH 2001), the environment radiance is
L(ω) = Σ_k c_k Y_k(ω) with the real orthonormal SH basis up to band 2, ordered

    Y_0 = 0.282095,
    Y_1 = 0.488603 y,  Y_2 = 0.488603 z,  Y_3 = 0.488603 x,
    Y_4 = 1.092548 xy, Y_5 = 1.092548 yz, Y_6 = 0.315392 (3z² - 1), Y_7 = 1.092548 xz, Y_8 = 0.546274 (x² - y²),

and a Lambertian surface with albedo ρ and unit normal n (camera frame: x right, y up, z to the camera) has

    I(n) = ρ / π · Σ_k A_l(k) c_k Y_k(n),    A_0 = π, A_1 = 2π/3, A_2 = π/4,

clamped at 0. A uniform environment of radiance 1 (c_0 = 2√π, others 0) renders the albedo exactly. A light
vector has 27 values laid out [9, 3] row-major: ``light[3k + ch]`` is coefficient k of channel ch (R, G, B), the
layout of the Basel Illumination Prior's ``environmentMap.coefficients`` (9 lists of [r, g, b]).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

SH_CONST = np.array([0.282095, 0.488603, 0.488603, 0.488603, 1.092548, 1.092548, 0.315392, 1.092548, 0.546274])
LAMBERT = np.array([math.pi] + [2 * math.pi / 3] * 3 + [math.pi / 4] * 5)


def sh_basis(n: np.ndarray) -> np.ndarray:
    """Real SH basis Y_0..Y_8 at unit directions n [N,3] -> [N,9] (order in the module docstring)."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    out = np.empty((n.shape[0], 9), dtype=n.dtype)
    out[:, 0] = SH_CONST[0]
    out[:, 1] = SH_CONST[1] * y
    out[:, 2] = SH_CONST[2] * z
    out[:, 3] = SH_CONST[3] * x
    out[:, 4] = SH_CONST[4] * x * y
    out[:, 5] = SH_CONST[5] * y * z
    out[:, 6] = SH_CONST[6] * (3 * z * z - 1)
    out[:, 7] = SH_CONST[7] * x * z
    out[:, 8] = SH_CONST[8] * (x * x - y * y)
    return out


def as_light(light: np.ndarray, where: str = "light") -> np.ndarray:
    """Validate a light vector ([27] or [9,3]) and return it as float [9,3]."""
    a = np.asarray(light, dtype=np.float64)
    if a.size != 27:
        raise ValueError(f"{where}: expected 27 SH coefficients (9 per channel, [9,3]), got shape {a.shape}")
    a = a.reshape(9, 3)
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: SH coefficients must be finite")
    return a


def irradiance(normals: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Σ_k A_l c_k Y_k(n) / π per channel, clamped at 0: [N,3] (the factor multiplying the albedo)."""
    coeff = (as_light(light) * (LAMBERT / math.pi)[:, None]).astype(normals.dtype)
    return np.maximum(sh_basis(normals) @ coeff, 0.0)


def shade(albedo: np.ndarray, normals: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Lambertian SH shading I = ρ · irradiance(n) (module formula); albedo and normals [N,3] -> float32 [N,3].
    Runs as one fused numba kernel (zoo.synth.render.sh_shade); :func:`irradiance` is the numpy reference."""
    from zoo.synth.render import sh_shade

    coeff = (as_light(light) * (LAMBERT / math.pi)[:, None]).astype(np.float32)
    return sh_shade(np.ascontiguousarray(albedo, dtype=np.float32), np.ascontiguousarray(normals, dtype=np.float32),
                    coeff)


def directional_sh(direction: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """SH coefficients [9,3] of a distant light: radiance intensity·δ(ω - direction) -> c_k = intensity·Y_k(ω)."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    return sh_basis(d[None])[0][:, None] * np.asarray(intensity, dtype=np.float64)[None, :]


class GaussianLightPrior:
    """Built-in Gaussian prior over the 27 SH coefficients, N(μ, Σ), fitted (deterministically, seed 0) to
    ``num_fit`` simulated natural environments: an ambient term plus a key light from the upper/frontal
    hemisphere and an optional fill light, with slightly tinted white colours. ``scale`` multiplies the
    spread around the mean (0 gives the mean light for every image)."""

    def __init__(self, scale: float = 1.0, num_fit: int = 20000, seed: int = 0) -> None:
        if not (scale >= 0 and math.isfinite(scale)):
            raise ValueError(f"light scale must be >= 0, got {scale}")
        self.scale = float(scale)
        samples = self.simulate(np.random.default_rng(seed), num_fit)
        self.mean = samples.mean(0)
        cov = np.cov(samples, rowvar=False) + 1e-8 * np.eye(27)
        self.chol = np.linalg.cholesky(cov)

    @staticmethod
    def simulate(rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` simulated environments as SH vectors [n, 27] (see class docstring)."""

        def direction(az_range, el_range):
            az = np.radians(rng.uniform(*az_range, n))
            el = np.radians(rng.uniform(*el_range, n))
            return np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], 1)

        tint = 1 + rng.normal(0, 0.05, (n, 3)) + np.array([1.0, 0.0, -1.0]) * rng.normal(0, 0.06, (n, 1))
        out = np.zeros((n, 9, 3))
        out[:, 0] = 2 * math.sqrt(math.pi) * rng.uniform(0.4, 0.8, (n, 1)) * tint  # ambient (uniform radiance)
        key = direction((-100, 100), (-15, 70))
        out += sh_basis(key)[:, :, None] * (rng.uniform(0.6, 2.2, (n, 1)) * tint)[:, None, :]
        fill = direction((-180, 180), (-30, 60))
        on = (rng.random((n, 1)) < 0.5) * rng.uniform(0.1, 0.8, (n, 1))
        out += sh_basis(fill)[:, :, None] * (on * tint)[:, None, :]
        return out.reshape(n, 27)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One light vector [27] (float32)."""
        return (self.mean + self.scale * (self.chol @ rng.standard_normal(27))).astype(np.float32)


class EmpiricalLightPrior:
    """Empirical prior: a list of SH light vectors (e.g. the Basel Illumination Prior, 14,348 estimates from
    real photos) sampled uniformly. ``path`` is an .npy/.txt/.csv file with rows of 27 values ([9,3]
    row-major, see the module docstring), or a folder of Basel-style JSON files holding
    ``{"environmentMap": {"coefficients": [[r, g, b] × 9]}}`` (possibly nested one level)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lights = self._load(self.path)

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        if not path.exists():
            raise FileNotFoundError(f"light prior {path} does not exist; expected a .npy/.txt/.csv file of [N,27] "
                                    f"SH vectors or a folder of Basel Illumination Prior JSON files")
        if path.is_dir():
            rows = []
            files = sorted(path.glob("*.json"))
            if not files:
                raise ValueError(f"light prior folder {path} holds no .json files")
            for f in files:
                try:
                    d = json.loads(f.read_text())
                except (OSError, json.JSONDecodeError) as e:
                    raise ValueError(f"{f}: not readable as JSON ({e})") from None
                env = d.get("environmentMap") or next((v["environmentMap"] for v in d.values()
                                                        if isinstance(v, dict) and "environmentMap" in v), None)
                if env is None or "coefficients" not in env:
                    raise ValueError(f"{f}: missing key 'environmentMap.coefficients' (9 lists of [r, g, b])")
                rows.append(as_light(env["coefficients"], where=f"{f}: environmentMap.coefficients").ravel())
            arr = np.stack(rows)
        else:
            try:
                if path.suffix == ".npy":
                    arr = np.load(path)
                else:
                    arr = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
            except (OSError, ValueError) as e:
                raise ValueError(f"{path}: cannot read light vectors ({e})") from None
            arr = np.asarray(arr, dtype=np.float64)
            if arr.ndim == 3 and arr.shape[1:] == (9, 3):
                arr = arr.reshape(len(arr), 27)
            if arr.ndim != 2 or arr.shape[1] != 27 or len(arr) == 0:
                raise ValueError(f"{path}: expected rows of 27 SH coefficients ([N,27] or [N,9,3]), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: SH coefficients contain NaN/inf")
        return arr.astype(np.float32)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.lights[int(rng.integers(len(self.lights)))].copy()


def build_light_prior(prior: str = "gaussian", path: str | None = None, scale: float = 1.0):
    """``prior`` "gaussian" (built-in) or "empirical" (needs ``path``)."""
    if prior == "gaussian":
        return GaussianLightPrior(scale=scale)
    if prior == "empirical":
        if not path:
            raise ValueError("light.prior='empirical' needs light.path (a file of SH vectors or a folder of JSON)")
        return EmpiricalLightPrior(path)
    raise ValueError(f"light.prior must be 'gaussian' or 'empirical', got {prior!r}")
