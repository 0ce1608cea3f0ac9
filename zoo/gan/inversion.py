"""GAN inversion, amortised: an encoder trained on generated (z, image) pairs gives a starting z, then a short
batched refinement of z and of a residual on the generator's first-stage features (Cheng et al. seed 004
inverts real faces before editing them; the two-stage code follows the "latent + intermediate feature"
inversions of Bau et al., "Seeing What a GAN Cannot Generate", ICCV 2019).

Refinement objective for a batch of targets ``x`` (images in [-1, 1])::

    min_{z, r}  mean (G.render(G.features(z) + r) - x)²  +  λ_z · mean(z²) / D  +  λ_r · mean(r²)

with Adam; ``r`` starts at 0 and joins after ``z_steps`` steps, so the edit directions (in z) keep acting on
a z that explains most of the face. Quality: PSNR = 10·log10(1 / MSE) on [0, 1] pixels; SSIM (Wang et al.,
"Image Quality Assessment: From Error Visibility to Structural Similarity", TIP 2004) with an 11-tap
Gaussian window (σ = 1.5), C1 = 0.01², C2 = 0.03², averaged over channels and valid pixels.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zoo.checks import check_int, check_nonnegative, check_positive, invalid

__all__ = ["Latent", "Encoder", "Inverter", "psnr", "ssim"]


@dataclass
class Latent:
    """``z`` [N, D] plus an optional ``residual`` [N, C, k, k] added to the generator's first-stage features."""

    z: torch.Tensor
    residual: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.z)

    def __getitem__(self, idx: Any) -> "Latent":
        return Latent(self.z[idx], None if self.residual is None else self.residual[idx])

    def to(self, device: Any) -> "Latent":
        return Latent(self.z.to(device), None if self.residual is None else self.residual.to(device))

    @staticmethod
    def cat(latents: list["Latent"]) -> "Latent":
        res = [l.residual for l in latents]
        return Latent(torch.cat([l.z for l in latents]),
                      None if any(r is None for r in res) else torch.cat(res))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak 1 on the [0, 1] scale) -> [N]."""
    mse = (((a - b) / 2.0) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return 10.0 * torch.log10(1.0 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM of images in [-1, 1] (computed on [0, 1]) -> [N] (see module docstring)."""
    x, y = (a.float() + 1) / 2, (b.float() + 1) / 2
    c = x.shape[1]
    g = torch.exp(-((torch.arange(window, dtype=torch.float32) - (window - 1) / 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).to(x.device).expand(c, 1, window, window).contiguous()

    def blur(t):
        return F.conv2d(t, k, groups=c)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return m.flatten(1).mean(1)


class Encoder(nn.Module):
    """Image [B, 3, 64, 64] -> z [B, D]: four stride-2 convs (16-32-64-128, BN, LeakyReLU 0.2) and a linear layer."""

    def __init__(self, latent_dim: int = 100, resolution: int = 64, width: int = 16) -> None:
        super().__init__()
        layers, c, r = [], 3, resolution
        for i in range(4):
            layers += [nn.Conv2d(c, width * 2 ** i, 4, 2, 1, bias=i == 0)]
            if i:
                layers += [nn.BatchNorm2d(width * 2 ** i)]
            layers += [nn.LeakyReLU(0.2, True)]
            c, r = width * 2 ** i, r // 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c * r * r, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


class Inverter:
    """Encoder + batched refinement for a generator ``G`` (see module docstring).

    ``fit_encoder`` trains (or loads from ``cache_dir``, keyed on ``G.weights_hash`` and the settings) the encoder;
    ``invert(crops)`` returns a :class:`Latent` and sets ``last_quality`` = dict(psnr, ssim, seconds_per_image,
    psnr_encoder) measured on the batch (means)."""

    def __init__(self, G: Any, cache_dir: str | os.PathLike | None | bool = None, device: Any = None) -> None:
        self.G = G
        self.device = torch.device(device) if device is not None else next(G.parameters()).device
        self.encoder = Encoder(G.latent_dim, G.resolution).to(self.device)
        self.fitted = False
        self.cache_dir = cache_dir
        self.last_quality: dict[str, float] = {}

    # ---- encoder -------------------------------------------------------------------------------------------
    def _cache_path(self, steps: int, batch_size: int, pool: int, seed: int) -> Path | None:
        if self.cache_dir is False:
            return None
        from zoo.gan.directions import default_cache_dir

        root = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
        return root / (f"encoder-{getattr(self.G, 'name', 'g')}-{self.G.weights_hash}-s{steps}-b{batch_size}"
                       f"-p{pool}-seed{seed}.pt")

    def fit_encoder(self, steps: int = 1500, batch_size: int = 64, pool: int = 4096, seed: int = 0, lr: float = 2e-3,
                    log_every: int = 0) -> "Inverter":
        """Train on generated pairs: Adam (cosine schedule) on ``mean (E(G(z)) - z)²`` over a pool of ``pool``
        pairs generated once (generation dominates the cost on CPU); loads the cached weights when present
        (key: generator weights hash + these settings)."""
        steps, batch_size = check_int("steps", steps, low=1), check_int("batch_size", batch_size, low=2)
        pool = check_int("pool", pool, low=batch_size)
        path = self._cache_path(steps, batch_size, pool, seed)
        if path is not None and path.is_file():
            return self.load_weights(path)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        Z = torch.randn(pool, self.G.latent_dim, generator=gen).to(self.device)
        with torch.no_grad():
            X = torch.cat([self.G(Z[i:i + 256]) for i in range(0, pool, 256)])
        opt = torch.optim.Adam(self.encoder.parameters(), lr=lr, betas=(0.9, 0.99))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        self.encoder.train()
        for step in range(steps):
            idx = torch.randint(0, pool, (batch_size,), generator=gen).to(self.device)
            loss = F.mse_loss(self.encoder(X[idx]), Z[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log_every and step % log_every == 0:
                print(f"encoder step {step}: z mse {loss.item():.4f}", flush=True)
        self.encoder.eval()
        self.fitted = True
        if path is not None:
            self.save(path)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"encoder": self.encoder.state_dict(), "weights_hash": self.G.weights_hash,
                    "generator": getattr(self.G, "name", "")}, tmp)
        os.replace(tmp, path)
        return path

    def load_weights(self, path: str | os.PathLike) -> "Inverter":
        path = Path(path)
        try:
            blob = torch.load(path, map_location=self.device, weights_only=True)
            state, h = blob["encoder"], blob["weights_hash"]
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: not a zoo.gan encoder file ({e}); expected one written by Inverter.save") from e
        if h != self.G.weights_hash:
            raise ValueError(f"{path}: encoder was trained for generator weights {h}, not {self.G.weights_hash}; "
                             "retrain it with Inverter.fit_encoder")
        self.encoder.load_state_dict(state, strict=True)
        self.encoder.eval()
        self.fitted = True
        return self

    @classmethod
    def load(cls, path: str | os.PathLike, G: Any, **kwargs: Any) -> "Inverter":
        return cls(G, **kwargs).load_weights(path)

    # ---- inversion -----------------------------------------------------------------------------------------
    def encode(self, crops: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise ValueError("Inverter: the encoder is not trained; call fit_encoder() or Inverter.load(path, G) first")
        with torch.no_grad():
            return self.encoder(crops.to(self.device))

    def invert(self, crops: torch.Tensor, batch_size: int = 64, refine_steps: int = 60, z_steps: int | None = None,
               lr_z: float = 0.05, lr_residual: float = 0.02, lambda_z: float = 1e-3, lambda_residual: float = 1e-3,
               residual: bool = True) -> Latent:
        """Invert ``crops`` [N, 3, R, R] in [-1, 1] (e.g. :func:`zoo.gan.align_faces` output) in batches."""
        crops = torch.as_tensor(crops, dtype=torch.float32)
        R = self.G.resolution
        if crops.dim() != 4 or tuple(crops.shape[1:]) != (3, R, R):
            raise invalid("crops", f"tensor {tuple(crops.shape)}", "wrong shape", f"[N, 3, {R}, {R}] in [-1, 1]")
        batch_size = check_int("batch_size", batch_size, low=1)
        refine_steps = check_int("refine_steps", refine_steps, low=0)
        z_steps = refine_steps // 3 if z_steps is None else check_int("z_steps", z_steps, low=0)
        t0 = time.perf_counter()
        outs, q_p, q_s, q_e = [], [], [], []
        for i in range(0, len(crops), batch_size):
            x = crops[i:i + batch_size].to(self.device)
            z0 = self.encode(x)
            lat, xe = self._refine(x, z0, refine_steps, z_steps, lr_z, lr_residual, lambda_z, lambda_residual, residual)
            with torch.no_grad():
                rec = self.G.decode(lat)
                q_p.append(psnr(rec, x))
                q_s.append(ssim(rec, x))
                q_e.append(psnr(xe, x))
            outs.append(lat.to("cpu"))
        dt = time.perf_counter() - t0
        self.last_quality = {"psnr": float(torch.cat(q_p).mean()), "ssim": float(torch.cat(q_s).mean()),
                             "psnr_encoder": float(torch.cat(q_e).mean()), "seconds_per_image": dt / max(len(crops), 1)}
        return Latent.cat(outs)

    def _refine(self, x, z0, steps, z_steps, lr_z, lr_r, lam_z, lam_r, use_residual):
        G = self.G
        z = z0.clone().requires_grad_(True)
        with torch.no_grad():
            xe = G(z0)
        r = torch.zeros((len(x),) + tuple(G.feature_shape), device=x.device, requires_grad=True)
        opt = torch.optim.Adam([{"params": [z], "lr": lr_z}, {"params": [r], "lr": lr_r}])
        D = z.shape[1]
        for step in range(steps):
            on_r = use_residual and step >= z_steps
            h = G.features(z)
            if on_r:
                h = h + r
            rec = G.render(h)
            loss = ((rec - x) ** 2).mean() + lam_z * (z ** 2).sum(1).mean() / D
            if on_r:
                loss = loss + lam_r * (r ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not on_r:
                r.grad = None
            opt.step()
        res = r.detach() if use_residual and steps > z_steps else None
        return Latent(z.detach(), res), xe
