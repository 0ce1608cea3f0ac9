"""Coordinate-regression losses for facial landmarks (pure torch).

All losses share one contract (:class:`LandmarkLoss`)::

    loss(pred [B,L,2], target [B,L,2], weight=None)

with ``e = pred - target`` and an element-wise function ``f`` applied to each coordinate error:

* per-landmark value   ``l_bj = f(e_bj,x) + f(e_bj,y)``  (sum over the x and y coordinates),
* per-sample value     ``v_b  = sum_j w_bj * l_bj / sum_j w_bj``  (weighted mean over landmarks;
  ``w = 1`` when ``weight`` is None; ``v_b = 0`` when all weights of sample b are 0, never NaN),
* ``reduction``: ``"mean"`` = mean of ``v_b`` over the batch, ``"sum"`` = sum, ``"none"`` = ``v`` [B]
  (what the loss-proportional batch sampler consumes).

``weight`` is ``[B,L]`` or ``[L]``: float weights >= 0 or a bool visibility mask. Targets may be NaN
where the weight is 0 (unlabelled landmarks); those entries never reach the loss or its gradient.
float16/bfloat16 inputs are computed and returned in float32 (so a 1e4 px error stays finite).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..checks import check_bool, check_number, check_positive
from ._checks import check_landmarks
from ._reduction import check_reduction, compute_dtype, reduce


class LandmarkLoss(nn.Module):
    """Base class: subclasses implement :meth:`elementwise` ``f(e)`` on coordinate errors."""

    def __init__(self, reduction: str = "mean", validate_inputs: bool = True) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.validate_inputs = check_bool("validate_inputs", validate_inputs)

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def per_landmark(self, pred: torch.Tensor, target: torch.Tensor,
                     weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``l_bj = f(e_x) + f(e_y)`` as [B,L] (0 where ``weight`` is 0); no input validation."""
        dtype = compute_dtype(pred.dtype)
        err = pred.to(dtype) - target.to(dtype)
        if weight is not None:
            err = torch.where((weight > 0).unsqueeze(-1), err, torch.zeros((), dtype=dtype, device=err.device))
        return self.elementwise(err).sum(-1)

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor,
                   weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-sample value ``v_b`` [B] regardless of ``self.reduction``."""
        if self.validate_inputs:
            check_landmarks(pred, target, weight)
        lm = self.per_landmark(pred, target, weight)
        return weighted_landmark_mean(lm, weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return reduce(self.per_sample(pred, target, weight), self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def weighted_landmark_mean(values: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    """``sum_j w_bj v_bj / sum_j w_bj`` over landmarks: [B,L] -> [B]; 0 for a sample whose weights are all 0."""
    if weight is None:
        return values.mean(-1)
    w = weight.to(values.dtype).expand_as(values)
    den = w.sum(-1)
    return (values * w).sum(-1) / den.clamp_min(torch.finfo(values.dtype).tiny)


class L2Loss(LandmarkLoss):
    """Squared error ``f(e) = 1/2 e^2`` (per landmark: ``1/2 ||p - g||^2``).

    The conventional landmark loss of Fuhl & Kasneci, "Learning to Validate the Quality of Detected
    Landmarks" (ICMV 2019), Sec. 4: ``1/2 (gt_i - ev_i)^2`` per output neuron (gradient ``gt_i - ev_i``).
    """

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:
        return 0.5 * err * err


class L1Loss(LandmarkLoss):
    """Absolute error ``f(e) = |e|`` (per landmark: the Manhattan distance ``|e_x| + |e_y|``)."""

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:
        return err.abs()


class SmoothL1Loss(LandmarkLoss):
    """Smooth L1 (Girshick, Fast R-CNN, ICCV 2015), as ``torch.nn.SmoothL1Loss``::

        f(e) = 0.5 e^2 / beta   if |e| < beta
               |e| - 0.5 beta   otherwise          (default beta = 1.0)
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean", validate_inputs: bool = True) -> None:
        super().__init__(reduction, validate_inputs)
        self.beta = check_positive("beta", beta)

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:
        a = err.abs()
        return torch.where(a < self.beta, 0.5 * a * a / self.beta, a - 0.5 * self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, " + super().extra_repr()


class WingLoss(LandmarkLoss):
    """Wing loss (Feng et al., "Wing Loss for Robust Facial Landmark Localisation with CNNs", CVPR 2018)::

        f(e) = omega * ln(1 + |e| / epsilon)   if |e| < omega
               |e| - C                          otherwise,   C = omega - omega * ln(1 + omega / epsilon)

    Defaults omega=10, epsilon=2 (the paper's, also used by seed 002's third training stage).
    """

    def __init__(self, omega: float = 10.0, epsilon: float = 2.0, reduction: str = "mean",
                 validate_inputs: bool = True) -> None:
        super().__init__(reduction, validate_inputs)
        self.omega = check_positive("omega", omega)
        self.epsilon = check_positive("epsilon", epsilon)
        self.C = self.omega - self.omega * math.log1p(self.omega / self.epsilon)

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:
        a = err.abs()
        return torch.where(a < self.omega, self.omega * torch.log1p(a / self.epsilon), a - self.C)

    def extra_repr(self) -> str:
        return f"omega={self.omega}, epsilon={self.epsilon}, " + super().extra_repr()


class SoftWingLoss(LandmarkLoss):
    """Soft Wing loss (Lin et al., "Structure-Coherent Deep Feature Learning for Robust Face Alignment",
    IEEE TIP 2021; the form used by mmpose's ``SoftWingLoss``)::

        f(e) = |e|                                  if |e| < omega1
               omega2 * ln(1 + |e| / epsilon) + B   otherwise,   B = omega1 - omega2 * ln(1 + omega1 / epsilon)

    Linear (constant gradient) for small errors, logarithmic for large ones; continuous at omega1.
    Defaults omega1=2, omega2=20, epsilon=0.5.
    """

    def __init__(self, omega1: float = 2.0, omega2: float = 20.0, epsilon: float = 0.5,
                 reduction: str = "mean", validate_inputs: bool = True) -> None:
        super().__init__(reduction, validate_inputs)
        self.omega1 = check_positive("omega1", omega1)
        self.omega2 = check_positive("omega2", omega2)
        self.epsilon = check_positive("epsilon", epsilon)
        self.B = self.omega1 - self.omega2 * math.log1p(self.omega1 / self.epsilon)

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:
        a = err.abs()
        return torch.where(a < self.omega1, a, self.omega2 * torch.log1p(a / self.epsilon) + self.B)

    def extra_repr(self) -> str:
        return (f"omega1={self.omega1}, omega2={self.omega2}, epsilon={self.epsilon}, "
                + super().extra_repr())


class AdaptiveWingLoss(LandmarkLoss):
    """Adaptive Wing loss (Wang, Bo & Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap
    Regression", ICCV 2019), applied element-wise to coordinate errors::

        f(e) = omega * ln(1 + (|e| / epsilon)^(alpha - y))   if |e| < theta
               A |e| - C                                     otherwise
        A = omega * (alpha - y) * (theta/epsilon)^(alpha - y - 1) / (epsilon * (1 + (theta/epsilon)^(alpha - y)))
        C = theta * A - omega * ln(1 + (theta/epsilon)^(alpha - y))

    Defaults alpha=2.1, omega=14, epsilon=1, theta=0.5 (the paper's).

    Adaptation to coordinates: in the paper ``y`` is the ground-truth heatmap value of each pixel
    (1 at the landmark, 0 on the background), so the exponent ``alpha - y`` varies per pixel. A
    coordinate has no heatmap value, so ``y`` is the constant ``target_value`` (default 0, the
    background-pixel form, exponent 2.1): near zero error the loss is ~``omega (|e|/epsilon)^2.1``
    (gradient vanishes smoothly), logarithmic up to ``theta`` and linear beyond with slope ``A``
    (continuous value and gradient at ``theta``). ``alpha - target_value`` must be > 1 so the loss is
    differentiable at zero error. Note that theta=0.5 is in the units of the coordinates: with pixel
    coordinates nearly all errors are in the linear part; use normalised coordinates or a larger theta.
    """

    def __init__(self, alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0, theta: float = 0.5,
                 target_value: float = 0.0, reduction: str = "mean", validate_inputs: bool = True) -> None:
        super().__init__(reduction, validate_inputs)
        self.alpha = check_positive("alpha", alpha)
        self.omega = check_positive("omega", omega)
        self.epsilon = check_positive("epsilon", epsilon)
        self.theta = check_positive("theta", theta)
        self.target_value = check_number("target_value", target_value, low=-math.inf,
                                         high=self.alpha - 1.0)
        p = self.alpha - self.target_value
        r = self.theta / self.epsilon
        self.A = self.omega * p * r ** (p - 1.0) / (self.epsilon * (1.0 + r ** p))
        self.C = self.theta * self.A - self.omega * math.log1p(r ** p)

    def elementwise(self, err: torch.Tensor) -> torch.Tensor:
        a = err.abs()
        p = self.alpha - self.target_value
        inner = self.omega * torch.log1p(torch.pow(torch.clamp(a, max=self.theta) / self.epsilon, p))
        return torch.where(a < self.theta, inner, self.A * a - self.C)

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, omega={self.omega}, epsilon={self.epsilon}, theta={self.theta}, "
                f"target_value={self.target_value}, " + super().extra_repr())


LANDMARK_LOSSES = {
    "l1": L1Loss,
    "l2": L2Loss,
    "smooth_l1": SmoothL1Loss,
    "wing": WingLoss,
    "soft_wing": SoftWingLoss,
    "adaptive_wing": AdaptiveWingLoss,
}
"""Name -> landmark loss class (the coordinate losses :class:`~zoo.losses.ValidationLoss` accepts by name)."""
