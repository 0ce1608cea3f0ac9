"""Losses of the identity/attribute face-synthesis GAN, exactly seed 003 (Vine §3.1) Eqs. 1, 3–6 (after Bao et
al. 2018). Pure torch; each returns the batch mean of a per-sample value (``reduction="none"``: the values [B]).

* Eq. 1 identity:    ``L_GI = ½ ‖n(f_I(x^s)) − n(f_I(x'))‖²``, ``n(v) = v / ‖v‖`` (normalised identity vectors).
* Eq. 3 KL:          ``L_KL = ½ Σ_i (exp(ε_i) + μ_i² − 1 − ε_i)``, ``ε = log σ²``, summed over the vector.
* Eq. 4 multi-scale: ``L_GR = 1/(2N) Σ_σ ‖x^a_σ − x'_σ‖²`` over the N generator scales, ``x^a_σ`` the target
  area-resized to scale σ. ``pixels="sum"`` is the equation (squared norm over all pixels of a scale);
  ``pixels="mean"`` divides each scale's norm by its pixel count (scale-independent magnitude; an option).
* Eq. 5 feature matching: ``L_GD = ½ ‖f_D(x^a) − f_D(x')‖²`` (D's last-layer features; real side detached).
* Eq. 6 discriminator: ``L_D = −log D(x^a) − log(1 − D(x'))`` with ``D = sigmoid(logit)``.
* Generator side of the standard GAN (identity GAN): ``−log D(G(z))`` (non-saturating).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return values.mean() if reduction == "mean" else values.sum() if reduction == "sum" else values


def identity_loss(identity_source: torch.Tensor, identity_synth: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 1: ``½ ‖n(a) − n(b)‖²`` per sample (``a = f_I(x^s)``, ``b = f_I(x')``, ``[B, D]``)."""
    if identity_source.shape != identity_synth.shape or identity_source.dim() != 2:
        raise ValueError(f"identity_loss: expected two [B, D] tensors of one shape, got "
                         f"{tuple(identity_source.shape)} and {tuple(identity_synth.shape)}")
    d = F.normalize(identity_source, dim=1) - F.normalize(identity_synth, dim=1)
    return _reduce(0.5 * d.pow(2).sum(1), reduction)


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 3: ``½ Σ (exp(ε) + μ² − 1 − ε)`` per sample (KL(N(μ, σ²) ‖ N(0, I)))."""
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(f"kl_loss: expected mu and logvar [B, N] of one shape, got {tuple(mu.shape)}, "
                         f"{tuple(logvar.shape)}")
    return _reduce(0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(1), reduction)


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` area-resized (box average) to ``size × size`` (identity when it already is)."""
    return x if x.shape[-1] == size and x.shape[-2] == size else F.interpolate(x, size=(size, size), mode="area")


def multiscale_reconstruction_loss(target: torch.Tensor, outputs: Sequence[torch.Tensor], pixels: str = "sum",
                                   reduction: str = "mean") -> torch.Tensor:
    """Eq. 4: ``1/(2N) Σ_σ ‖resize(target, s_σ) − outputs[σ]‖²`` per sample, N = ``len(outputs)``."""
    if pixels not in ("sum", "mean"):
        raise ValueError(f"multiscale_reconstruction_loss: pixels must be 'sum' (Eq. 4) or 'mean', got {pixels!r}")
    if not outputs:
        raise ValueError("multiscale_reconstruction_loss: no generator outputs")
    total = target.new_zeros(target.shape[0])
    for out in outputs:
        if out.dim() != 4 or out.shape[:2] != target.shape[:2] or out.shape[-1] != out.shape[-2]:
            raise ValueError(f"multiscale_reconstruction_loss: output {tuple(out.shape)} does not match target "
                             f"{tuple(target.shape)} (same batch and channels, square)")
        sq = (resize_to(target, out.shape[-1]) - out).pow(2).flatten(1)
        total = total + (sq.sum(1) if pixels == "sum" else sq.mean(1))
    return _reduce(total / (2 * len(outputs)), reduction)


def feature_matching_loss(features_real: torch.Tensor, features_fake: torch.Tensor,
                          reduction: str = "mean") -> torch.Tensor:
    """Eq. 5: ``½ ‖f_D(x^a) − f_D(x')‖²`` per sample (gradient only through the fake side)."""
    if features_real.shape != features_fake.shape:
        raise ValueError(f"feature_matching_loss: shapes differ: {tuple(features_real.shape)} vs "
                         f"{tuple(features_fake.shape)}")
    return _reduce(0.5 * (features_real.detach() - features_fake).pow(2).flatten(1).sum(1), reduction)


def discriminator_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 6: ``−log σ(l_real) − log(1 − σ(l_fake))`` per sample (logits ``[B]``)."""
    real = F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real), reduction="none")
    fake = F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake), reduction="none")
    return _reduce(real + fake, reduction)


def generator_gan_loss(logit_fake: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Non-saturating generator loss ``−log σ(l_fake)`` (the identity GAN's generator)."""
    return _reduce(F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake), reduction="none"),
                   reduction)
