"""Margin-based softmax losses for face recognition (ArcFace, CosFace, combined margin, sub-centres).

With L2-normalised embedding ``x_i``, L2-normalised class centre ``W_j`` and ``cos(theta_ij) = W_j . x_i``::

    L_i = -log( exp(s * phi(theta_{i,y_i})) / (exp(s * phi(theta_{i,y_i})) + sum_{j != y_i} exp(s * cos(theta_ij))) )
    phi(theta) = cos(m1 * theta + m2) - m3                          (combined margin)

ArcFace (Deng et al., CVPR 2019): m1=1, m2=m=0.5, m3=0, s=64. CosFace (Wang et al., CVPR 2018): m1=1,
m2=0, m3=m=0.35, s=64. Sub-center ArcFace (Deng et al., ECCV 2020): K centres per class,
``cos(theta_ij) = max_k W_jk . x_i``.

Monotonicity fallback (insightface ``easy_margin=False``): when ``m1 * theta + m2 > pi`` the target logit
``cos(m1 theta + m2)`` would increase again with theta, so it is replaced by
``cos(theta) - m2 * sin(m2) - m3`` (for ArcFace: ``cos(theta) - m sin(m)``, i.e. ``cos(theta) - sin(pi - m) m``
used when ``cos(theta) <= cos(pi - m)``). CosFace never reaches it.

``margin_grad`` selects how the margin enters the gradient:

* ``True`` (default, the papers' formulation): ``phi`` above is differentiated by autograd,
  ``d phi / d cos(theta) = m1 sin(m1 theta + m2) / sin(theta)`` in the cos branch and 1 in the fallback.
* ``False`` reproduces insightface ``recognition/arcface_torch/losses.py`` (``CombinedMarginLoss``/``ArcFace``
  since 2022): the target logit is computed inside ``torch.no_grad()`` by ``arccos_``, ``+ m2``, ``cos_``
  applied in place to the logits, so backward treats it as the identity: the logit *value* is
  ``cos(theta + m2)`` (and ``cos(theta) - m3`` for CosFace) but ``d logit / d cos(theta) = 1`` (a
  straight-through margin); that code path applies no ``theta > pi - m`` fallback, and neither does this
  mode (``phi = cos(m1 theta + m2) - m3`` for every theta). For CosFace both modes are identical.

Numerics: cos(theta) is clamped to ``[-1 + eps, 1 - eps]`` before ``arccos`` (finite gradients at theta=0
and theta=pi, never NaN); half-precision inputs are computed in float32.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (check_embeddings, check_int, check_nonnegative, check_number, check_positive,
                      check_reduction)
from ._reduction import compute_dtype


class CombinedMarginLoss(nn.Module):
    """Combined margin softmax ``phi(theta) = cos(m1 theta + m2) - m3`` (ArcFace paper, Sec. 3 / Table 1).

    Args:
        embedding_dim: D. num_classes: C.
        scale: s > 0. m1 > 0, m2 in [0, pi), m3 >= 0: the margins (defaults: the paper's combined
            setting CM1 = (1, 0.3, 0.2)).
        subcenters: K >= 1 sub-centres per class (Sub-center ArcFace); ``self.weight`` is [C*K, D],
            row ``c*K + k`` is sub-centre k of class c.
        margin_grad: autograd through the margin (True) or insightface's straight-through margin (False);
            see the module docstring.
        reduction: "mean" | "sum" | "none" ([B] per-sample cross-entropy).
        eps: clamp of cos(theta) away from +-1.

    ``forward(embeddings [B,D], labels [B] int in [0, C)) -> loss``; ``logits(embeddings) -> s*cos [B,C]``
    (no margin; for accuracy). ``self.weight`` is an ``nn.Parameter`` (initialised N(0, 0.01) like
    insightface), so the optimizer sees it as part of the model.
    """

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, m1: float = 1.0,
                 m2: float = 0.3, m3: float = 0.2, subcenters: int = 1, margin_grad: bool = True,
                 reduction: str = "mean", eps: float = 1e-7, validate_inputs: bool = True) -> None:
        super().__init__()
        self.embedding_dim = check_int("embedding_dim", embedding_dim)
        self.num_classes = check_int("num_classes", num_classes)
        self.subcenters = check_int("subcenters", subcenters)
        self.scale = check_positive("scale", scale)
        self.m1 = check_positive("m1", m1)
        self.m2 = check_number("m2", m2, low=0.0, high=math.pi, low_inclusive=True)
        self.m3 = check_nonnegative("m3", m3)
        self.eps = check_number("eps", eps, low=0.0, high=0.5)
        self.margin_grad = bool(margin_grad)
        self.reduction = check_reduction(reduction)
        self.validate_inputs = bool(validate_inputs)
        self.weight = nn.Parameter(torch.empty(self.num_classes * self.subcenters, self.embedding_dim))
        nn.init.normal_(self.weight, 0.0, 0.01)

    def scaled_cosine(self, embeddings: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """``scale * cos(theta)`` [B, C] between normalised embeddings and (the closest sub-centre of) each
        class. The scale is folded into the normalised embeddings ([B, D]) rather than applied to [B, C]."""
        dtype = compute_dtype(embeddings.dtype)
        x = F.normalize(embeddings.to(dtype), dim=1)
        if scale != 1.0:
            x = x * scale
        cos = F.linear(x, F.normalize(self.weight.to(dtype), dim=1))
        if self.subcenters > 1:
            cos = cos.view(cos.shape[0], self.num_classes, self.subcenters).amax(-1)
        return cos

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled cosine ``s * cos(theta)`` [B, C] without margin (argmax = predicted class)."""
        if self.validate_inputs:
            self._check(embeddings, None)
        return self.scaled_cosine(embeddings, self.scale)

    def target_logit(self, cos_t: torch.Tensor) -> torch.Tensor:
        """phi for the target-class cosines [B] (with the fallback / gradient mode of the module docstring)."""
        if self.m1 == 1.0 and self.m2 == 0.0:
            return cos_t - self.m3
        if not self.margin_grad:
            with torch.no_grad():
                theta = torch.acos(cos_t.clamp(-1.0 + self.eps, 1.0 - self.eps))
                delta = torch.cos(self.m1 * theta + self.m2) - self.m3 - cos_t
            return cos_t + delta
        theta = torch.acos(cos_t.clamp(-1.0 + self.eps, 1.0 - self.eps))
        inside = self.m1 * theta.detach() + self.m2 <= math.pi
        phi = torch.cos(self.m1 * theta + self.m2) - self.m3
        fallback = cos_t - self.m2 * math.sin(self.m2) - self.m3
        return torch.where(inside, phi, fallback)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.validate_inputs:
            self._check(embeddings, labels)
        # the target logits are written in place (no one-hot, no copy of [B, C]): the matmul's backward does
        # not need its output, so this is autograd-safe; amax (sub-centres) saves its output: copy there.
        logits = self.scaled_cosine(embeddings, self.scale)
        rows = torch.arange(logits.shape[0], device=logits.device)
        phi = self.target_logit(logits[rows, labels] / self.scale) * self.scale
        if self.subcenters > 1:
            logits = logits.index_put((rows, labels), phi)
        else:
            logits.index_put_((rows, labels), phi)
        return F.cross_entropy(logits, labels, reduction=self.reduction)

    def _check(self, embeddings: torch.Tensor, labels) -> None:
        if labels is None:
            labels = torch.zeros(embeddings.shape[0] if isinstance(embeddings, torch.Tensor)
                                 and embeddings.dim() > 0 else 0, dtype=torch.long)
        check_embeddings(embeddings, labels)
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(f"embeddings must have shape [B, D] with D=embedding_dim={self.embedding_dim}, "
                             f"got {tuple(embeddings.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be class indices in [0, num_classes={self.num_classes}), got values "
                             f"in [{int(labels.min())}, {int(labels.max())}]")

    def extra_repr(self) -> str:
        return (f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}, scale={self.scale}, "
                f"m1={self.m1}, m2={self.m2}, m3={self.m3}, subcenters={self.subcenters}, "
                f"margin_grad={self.margin_grad}, reduction={self.reduction!r}")


class ArcFaceLoss(CombinedMarginLoss):
    """ArcFace additive angular margin (Deng, Guo, Xue & Zafeiriou, CVPR 2019): ``phi = cos(theta + m)``,
    s=64, m=0.5 rad; ``cos(theta) - m sin(m)`` when ``theta > pi - m`` (see the module docstring)."""

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.5,
                 subcenters: int = 1, margin_grad: bool = True, reduction: str = "mean", eps: float = 1e-7,
                 validate_inputs: bool = True) -> None:
        margin = check_number("margin", margin, low=0.0, high=math.pi, low_inclusive=True)
        super().__init__(embedding_dim, num_classes, scale, 1.0, margin, 0.0, subcenters, margin_grad,
                         reduction, eps, validate_inputs)

    @property
    def margin(self) -> float:
        return self.m2


class CosFaceLoss(CombinedMarginLoss):
    """CosFace / AM-Softmax large margin cosine loss (Wang et al., CVPR 2018): ``phi = cos(theta) - m``,
    s=64, m=0.35."""

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.35,
                 subcenters: int = 1, margin_grad: bool = True, reduction: str = "mean", eps: float = 1e-7,
                 validate_inputs: bool = True) -> None:
        margin = check_nonnegative("margin", margin)
        super().__init__(embedding_dim, num_classes, scale, 1.0, 0.0, margin, subcenters, margin_grad,
                         reduction, eps, validate_inputs)

    @property
    def margin(self) -> float:
        return self.m3
