"""Validation loss of Fuhl & Kasneci, "Learning to Validate the Quality of Detected Landmarks"
(ICMV 2019, seed 002), Sec. 4, Eq. 3.

The network predicts, besides each landmark's position, a validation signal ``v_bj`` that estimates
its own error. The training label of that signal is the *detached* distance between the predicted and
the annotated position (Manhattan by default, as in the paper's experiments)::

    d_bj      = dist(stopgrad(p_bj), g_bj)                     (Manhattan |ex| + |ey|, Euclidean, or a callable)
    val_b     = sum_j w_bj * 1/2 (d_bj - v_bj)^2 / sum_j w_bj   (weighted mean over visible landmarks)
    coord_b   = coordinate loss of sample b (any :class:`~zoo.losses.landmark.LandmarkLoss`)
    total_b   = coord_b + weight * val_b

Eq. 3's gradient for the validation neuron is ``N_{i+2} = d - ev_{i+2}``, i.e. the derivative of
``1/2 (d - v)^2`` with ``d`` held constant; the coordinates get only the coordinate loss's gradient.

``target="log_distance"`` (a zoo extension, not in the paper) regresses the error on a log scale instead:

    val_b     = sum_j w_bj * 1/2 (log(d_bj + eps) - log(v_bj + eps))^2 / sum_j w_bj      (v_bj > -eps)

which weighs a 1 -> 2 px error like a 10 -> 20 px one; the squared Eq. 3 term is dominated by the few large
errors, so its fit ranks the many small ones poorly (docs/landmark_model.md, "Validation signal").
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import torch

from ..checks import check_bool, check_choice, check_nonnegative, check_positive, invalid
from ._checks import check_finite, check_landmarks, check_tensor
from ._reduction import check_reduction, compute_dtype, reduce
from .landmark import LANDMARK_LOSSES, LandmarkLoss, weighted_landmark_mean

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ValidationLossOutput(NamedTuple):
    """Each field reduced by the loss's ``reduction`` (``[B]`` for ``"none"``)."""

    total: torch.Tensor
    coord: torch.Tensor
    validation: torch.Tensor


def manhattan(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|x_p - x_g| + |y_p - y_g|`` per landmark: [B,L,2] x2 -> [B,L] (seed 002's choice)."""
    return (pred - target).abs().sum(-1)


def euclidean(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``sqrt((x_p - x_g)^2 + (y_p - y_g)^2)`` per landmark: [B,L]."""
    return torch.linalg.vector_norm(pred - target, dim=-1)


DISTANCES = {"manhattan": manhattan, "euclidean": euclidean}
TARGETS = ("distance", "log_distance")


class ValidationLoss(torch.nn.Module):
    """Coordinate loss + ``weight`` x validation loss (seed 002, Eq. 3); see the module docstring.

    Args:
        coord_loss: a landmark loss name from :func:`zoo.losses.available` (e.g. ``"l2"``, ``"wing"``)
            or a :class:`LandmarkLoss` instance. Its own ``reduction`` is ignored (per-sample values are
            used). Can be replaced at runtime (``loss.coord_loss = "l1"``) for the paper's L2 -> L1 ->
            Wing schedule.
        distance: ``"manhattan"`` (paper default), ``"euclidean"`` or a callable
            ``(pred [B,L,2], target [B,L,2]) -> [B,L]``; evaluated on the detached prediction.
        weight: multiplier of the validation term (paper: 1.0). A plain attribute: a model may ramp it
            at runtime (training with weight 1 from the first step can diverge with large initial errors).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` ([B] per field).
        target: ``"distance"`` (Eq. 3) or ``"log_distance"`` (module docstring).
        eps: the ``eps`` of ``"log_distance"`` (> 0, in the units of the coordinates).

    ``forward(pred [B,L,2], validation [B,L], target [B,L,2], weight=None) -> ValidationLossOutput``
    where ``weight`` is the optional [B,L]/[L] landmark weight or visibility mask (as for landmark losses).
    """

    def __init__(self, coord_loss: Union[str, LandmarkLoss] = "l2",
                 distance: Union[str, DistanceFn] = "manhattan", weight: float = 1.0,
                 reduction: str = "mean", validate_inputs: bool = True, target: str = "distance",
                 eps: float = 1.0) -> None:
        super().__init__()
        self.target = check_choice("target", target, TARGETS)
        self.eps = check_positive("eps", eps)
        self.reduction = check_reduction(reduction)
        self.validate_inputs = check_bool("validate_inputs", validate_inputs)
        self.weight = check_nonnegative("weight", weight)
        if not (isinstance(distance, str) or callable(distance)):
            raise invalid("distance", distance, "neither a name nor a callable",
                          "'manhattan', 'euclidean' or a callable (pred [B,L,2], target [B,L,2]) -> [B,L]")
        if isinstance(distance, str):
            distance = DISTANCES[check_choice("distance", distance, sorted(DISTANCES))]
        self.distance_name = getattr(distance, "__name__", type(distance).__name__)
        self.distance = distance
        self.coord_loss = coord_loss

    def __setattr__(self, name, value):
        if name == "coord_loss":
            value = _resolve_coord_loss(value)
        super().__setattr__(name, value)

    def forward(self, pred: torch.Tensor, validation: torch.Tensor, target: torch.Tensor,
                weight: Optional[torch.Tensor] = None) -> ValidationLossOutput:
        if self.validate_inputs:
            check_landmarks(pred, target, weight)
            check_tensor("validation", validation, 2, f"[B, L]={list(pred.shape[:2])}")
            if validation.shape != pred.shape[:2]:
                raise ValueError(f"validation must have shape [B, L]={list(pred.shape[:2])} matching pred "
                                 f"[B, L, 2], got {tuple(validation.shape)}")
            check_finite("validation", validation)
        w = float(self.weight)
        if not w >= 0:
            raise ValueError(f"ValidationLoss.weight={self.weight!r} must be >= 0")
        coord = self.coord_loss.per_landmark(pred, target, weight)
        coord = weighted_landmark_mean(coord, weight)
        dtype = compute_dtype(pred.dtype)
        with torch.no_grad():
            d = self.distance(pred.detach().to(dtype), target.to(dtype))
            if d.shape != pred.shape[:2]:
                raise ValueError(f"distance returned shape {tuple(d.shape)}; expected [B, L]={list(pred.shape[:2])}")
            if weight is not None:
                d = torch.where(weight > 0, d, torch.zeros((), dtype=d.dtype, device=d.device))
        v = validation.to(dtype)
        if weight is not None:
            v = torch.where(weight > 0, v, d)
        if self.target == "log_distance":
            if self.validate_inputs and bool((v <= -self.eps).any()):
                raise ValueError(f"validation: target='log_distance' needs validation > -eps={self.eps}, got "
                                 f"min {float(v.min())}")
            eps = float(self.eps)
            val = weighted_landmark_mean(0.5 * (torch.log(d + eps) - torch.log(v + eps)) ** 2, weight)
        else:
            val = weighted_landmark_mean(0.5 * (d - v) ** 2, weight)
        total = coord + w * val
        return ValidationLossOutput(reduce(total, self.reduction), reduce(coord, self.reduction),
                                    reduce(val, self.reduction))

    def extra_repr(self) -> str:
        return (f"distance={self.distance_name!r}, weight={self.weight}, reduction={self.reduction!r}, "
                f"target={self.target!r}" + (f", eps={self.eps}" if self.target == "log_distance" else ""))


def _resolve_coord_loss(value) -> LandmarkLoss:
    if isinstance(value, str):
        value = LANDMARK_LOSSES[check_choice("coord_loss", value, sorted(LANDMARK_LOSSES))]()
    if not isinstance(value, LandmarkLoss):
        raise ValueError(f"coord_loss must be a landmark loss name or a zoo.losses LandmarkLoss instance, "
                         f"got {type(value).__name__}")
    return value
