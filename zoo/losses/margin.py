"""Margin-based softmax losses for face recognition (ArcFace, CosFace, combined margin, sub-centres, Partial FC).

Split as in insightface ``arcface_torch``: a :class:`~zoo.losses.classifier.NormalisedClassifier` owns the
class centres and gives ``cos(theta)``; a stateless margin (:class:`ArcFace`, :class:`CosFace`,
:class:`CombinedMargin`) maps ``(cos_theta [B, C], labels [B]) -> logits [B, C]`` (scale included);
:class:`ArcFaceLoss` / :class:`CosFaceLoss` / :class:`CombinedMarginLoss` compose classifier + margin +
cross-entropy with ``forward(embeddings, labels) -> loss``.

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
and theta=pi, never NaN); half-precision inputs are computed in float32. The margin touches only the
target column (``B`` values: ``arccos``/``cos`` on [B], not on [B, C]).

Empty batch (B = 0): ``"mean"`` and ``"sum"`` give a zero loss connected to the embeddings and the
centres (``backward`` works, gradients are 0, like PML's losses), ``"none"`` an empty [0] tensor.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_bool, check_nonnegative, check_number, check_positive
from ._checks import check_embeddings
from ._reduction import check_reduction, reduce
from .classifier import NormalisedClassifier


class CombinedMargin(nn.Module):
    """Stateless combined margin ``phi(theta) = cos(m1 theta + m2) - m3`` on the target logit (ArcFace paper,
    Sec. 3 / Table 1): ``forward(cos_theta [B, C], labels [B]) -> logits [B, C]`` = ``s * cos_theta`` with the
    target column ``s * phi(theta_y)``. No parameters; the module docstring gives the fallback and
    ``margin_grad`` modes. Defaults: the paper's combined setting CM1 = (1, 0.3, 0.2), s = 64."""

    def __init__(self, scale: float = 64.0, m1: float = 1.0, m2: float = 0.3, m3: float = 0.2,
                 margin_grad: bool = True, eps: float = 1e-7) -> None:
        super().__init__()
        self.scale = check_positive("scale", scale)
        self.m1 = check_positive("m1", m1)
        self.m2 = check_number("m2", m2, low=0.0, high=math.pi, low_inclusive=True)
        self.m3 = check_nonnegative("m3", m3)
        self.eps = check_number("eps", eps, low=0.0, high=0.5)
        self.margin_grad = check_bool("margin_grad", margin_grad)

    def forward(self, cos_theta: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.apply_to_scaled(cos_theta * self.scale, labels, inplace=True)

    def apply_to_scaled(self, logits: torch.Tensor, labels: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Replace the target column of ``logits = s * cos_theta`` [B, C] by ``s * phi`` (in place when the
        caller owns ``logits`` and autograd allows it, e.g. a matmul or scalar-product output)."""
        rows = torch.arange(logits.shape[0], device=logits.device)
        phi = self.target_logit(logits[rows, labels] / self.scale) * self.scale
        return logits.index_put_((rows, labels), phi) if inplace else logits.index_put((rows, labels), phi)

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

    def extra_repr(self) -> str:
        return f"scale={self.scale}, m1={self.m1}, m2={self.m2}, m3={self.m3}, margin_grad={self.margin_grad}"


class ArcFace(CombinedMargin):
    """ArcFace additive angular margin (Deng, Guo, Xue & Zafeiriou, CVPR 2019): ``phi = cos(theta + m)``,
    s=64, m=0.5 rad; ``cos(theta) - m sin(m)`` when ``theta > pi - m`` (see the module docstring)."""

    def __init__(self, scale: float = 64.0, margin: float = 0.5, margin_grad: bool = True, eps: float = 1e-7) -> None:
        super().__init__(scale, 1.0, check_number("margin", margin, low=0.0, high=math.pi, low_inclusive=True), 0.0,
                         margin_grad, eps)


class CosFace(CombinedMargin):
    """CosFace / AM-Softmax large margin cosine (Wang et al., CVPR 2018): ``phi = cos(theta) - m``, s=64, m=0.35."""

    def __init__(self, scale: float = 64.0, margin: float = 0.35, margin_grad: bool = True, eps: float = 1e-7) -> None:
        super().__init__(scale, 1.0, 0.0, check_nonnegative("margin", margin), margin_grad, eps)


class CombinedMarginLoss(NormalisedClassifier):
    """Classifier + :class:`CombinedMargin` + cross-entropy; ``forward(embeddings [B,D], labels [B]) -> loss``.

    Args:
        embedding_dim: D. num_classes: C. subcenters: K (Sub-center ArcFace). sample_rate: Partial FC rate
            r in (0, 1] (training mode only). See :class:`~zoo.losses.classifier.NormalisedClassifier`.
        scale, m1, m2, m3, margin_grad, eps: the margin (:class:`CombinedMargin`).
        reduction: "mean" | "sum" | "none" ([B] per-sample cross-entropy).

    The class centres are ``self.weight`` [C*K, D] (an ``nn.Parameter``: the loss *is* its classifier, so
    the optimizer and checkpoints see ``loss.weight``); the margin is ``self.margin_logits``.
    ``logits(embeddings) -> s*cos [B,C]`` (no margin, every class; for accuracy).
    """

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, m1: float = 1.0,
                 m2: float = 0.3, m3: float = 0.2, subcenters: int = 1, margin_grad: bool = True,
                 reduction: str = "mean", eps: float = 1e-7, sample_rate: float = 1.0,
                 validate_inputs: bool = True, margin_logits: Optional[CombinedMargin] = None) -> None:
        super().__init__(embedding_dim, num_classes, subcenters, sample_rate)
        self.margin_logits = margin_logits or CombinedMargin(scale, m1, m2, m3, margin_grad, eps)
        self.reduction = check_reduction(reduction)
        self.validate_inputs = check_bool("validate_inputs", validate_inputs)

    scale = property(lambda self: self.margin_logits.scale)
    m1 = property(lambda self: self.margin_logits.m1)
    m2 = property(lambda self: self.margin_logits.m2)
    m3 = property(lambda self: self.margin_logits.m3)
    eps = property(lambda self: self.margin_logits.eps)

    @property
    def margin_grad(self) -> bool:
        return self.margin_logits.margin_grad

    @margin_grad.setter
    def margin_grad(self, value: bool) -> None:
        self.margin_logits.margin_grad = check_bool("margin_grad", value)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled cosine ``s * cos(theta)`` [B, C] without margin (argmax = predicted class)."""
        if self.validate_inputs:
            self._check(embeddings, None)
        return self.cosine(embeddings, None, self.scale)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.validate_inputs:
            self._check(embeddings, labels)
        classes = None
        if self.sampling:
            classes, labels = self.sample(labels)
        logits = self.cosine(embeddings, classes, self.scale)
        # the matmul's backward does not need its output, so the target logits can be written in place;
        # amax (sub-centres) saves its output: copy there.
        logits = self.margin_logits.apply_to_scaled(logits, labels, inplace=self.subcenters == 1)
        return reduce(F.cross_entropy(logits, labels, reduction="none"), self.reduction)

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
        return super().extra_repr() + f", reduction={self.reduction!r}"


class ArcFaceLoss(CombinedMarginLoss):
    """:class:`CombinedMarginLoss` with the :class:`ArcFace` margin (s=64, m=0.5 rad)."""

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.5,
                 subcenters: int = 1, margin_grad: bool = True, reduction: str = "mean", eps: float = 1e-7,
                 sample_rate: float = 1.0, validate_inputs: bool = True) -> None:
        super().__init__(embedding_dim, num_classes, subcenters=subcenters, reduction=reduction,
                         sample_rate=sample_rate, validate_inputs=validate_inputs,
                         margin_logits=ArcFace(scale, margin, margin_grad, eps))

    margin = property(lambda self: self.m2)


class CosFaceLoss(CombinedMarginLoss):
    """:class:`CombinedMarginLoss` with the :class:`CosFace` margin (s=64, m=0.35)."""

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.35,
                 subcenters: int = 1, margin_grad: bool = True, reduction: str = "mean", eps: float = 1e-7,
                 sample_rate: float = 1.0, validate_inputs: bool = True) -> None:
        super().__init__(embedding_dim, num_classes, subcenters=subcenters, reduction=reduction,
                         sample_rate=sample_rate, validate_inputs=validate_inputs,
                         margin_logits=CosFace(scale, margin, margin_grad, eps))

    margin = property(lambda self: self.m3)
