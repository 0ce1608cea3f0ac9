"""Triplet loss (Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for Face Recognition
and Clustering", CVPR 2015) with online miners (:mod:`zoo.losses.miners`)::

    l(a, p, n) = max(0, d(a, p) - d(a, n) + alpha)

with ``d`` the squared Euclidean distance between L2-normalised embeddings and alpha = 0.2 by default
(the paper's; also OpenFace's, which seeds 000/001 train with batches of 20 identities x 15 images).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F

from ..checks import check_bool, check_choice, check_nonnegative
from ._checks import check_embeddings
from ._reduction import check_reduction, compute_dtype
from .miners import MINERS

DISTANCES = ("squared_euclidean", "euclidean", "cosine")


class TripletLossOutput(NamedTuple):
    """``TripletLoss(..., return_info=True)``: the loss and the mined triplets (int64 index tensors)."""

    loss: torch.Tensor
    anchors: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor

    @property
    def num_triplets(self) -> int:
        return int(self.anchors.numel())


def pairwise_distance(x: torch.Tensor, distance: str) -> torch.Tensor:
    """[B,D] -> [B,B]: ``||xi - xj||^2`` (clamped >= 0), its square root, or ``1 - cos(xi, xj)``."""
    if distance == "cosine":
        xn = F.normalize(x, dim=1)
        return 1.0 - xn @ xn.t()
    sq = x.pow(2).sum(1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.t())).clamp_min(0.0)
    if distance == "squared_euclidean":
        return d2
    # clamp keeps the sqrt gradient finite at d = 0 (anchor vs itself, duplicate images)
    return d2.clamp_min(1e-12).sqrt()


class TripletLoss(torch.nn.Module):
    """FaceNet triplet loss with online mining; ``forward(embeddings [B,D], labels [B])``.

    Args:
        margin: alpha >= 0 (FaceNet: 0.2 on squared distances of unit-norm embeddings).
        distance: ``"squared_euclidean"`` (FaceNet), ``"euclidean"`` or ``"cosine"`` (1 - cos).
        normalize: L2-normalise the embeddings first (FaceNet constrains them to the unit hypersphere).
        miner: ``"semihard"`` (FaceNet, default), ``"batch_all"``, ``"batch_hard"``, ``"openface_random"``;
            see :mod:`zoo.losses.miners`.
        average_nonzero: average only over triplets with a positive loss (Hermans et al.'s "BA!=0");
            default False: average over all mined triplets.
        reduction: ``"mean"`` over triplets, ``"sum"`` over triplets, or ``"none"``: one value per anchor
            sample [B], the mean over that anchor's triplets (0 for an anchor without triplets).
        generator: optional torch.Generator for the random miner.

    A batch without any triplet (e.g. a single identity, or B = 0) gives a zero loss that is still connected
    to the embeddings (``backward`` works, gradients are 0), never NaN. The loss keeps no state:
    ``forward(..., return_info=True)`` returns a :class:`TripletLossOutput` ``(loss, anchors, positives,
    negatives)`` with the mined triplets (``.num_triplets``). Half-precision embeddings are computed in float32.
    """

    def __init__(self, margin: float = 0.2, distance: str = "squared_euclidean", normalize: bool = True,
                 miner: str = "semihard", average_nonzero: bool = False, reduction: str = "mean",
                 generator: Optional[torch.Generator] = None, validate_inputs: bool = True) -> None:
        super().__init__()
        self.margin = check_nonnegative("margin", margin)
        self.distance = check_choice("distance", distance, DISTANCES)
        self.miner = check_choice("miner", miner, sorted(MINERS))
        self.normalize = check_bool("normalize", normalize)
        self.average_nonzero = check_bool("average_nonzero", average_nonzero)
        self.reduction = check_reduction(reduction)
        self.generator = generator
        self.validate_inputs = check_bool("validate_inputs", validate_inputs)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                return_info: bool = False) -> Union[torch.Tensor, TripletLossOutput]:
        loss, (a, p, n) = self._loss_and_triplets(embeddings, labels)
        return TripletLossOutput(loss, a, p, n) if return_info else loss

    def _loss_and_triplets(self, embeddings: torch.Tensor, labels: torch.Tensor):
        if self.validate_inputs:
            check_embeddings(embeddings, labels)
        x = embeddings.to(compute_dtype(embeddings.dtype))
        if self.normalize:
            x = F.normalize(x, dim=1)
        dist = pairwise_distance(x, self.distance)
        a, p, n = MINERS[self.miner](dist.detach(), labels, self.margin, self.generator)
        B = embeddings.shape[0]
        if a.numel() == 0:
            zero = x.sum() * 0.0
            return (zero.expand(B) + 0.0 if self.reduction == "none" else zero), (a, p, n)
        losses = F.relu(dist[a, p] - dist[a, n] + self.margin)
        if self.reduction == "sum":
            return losses.sum(), (a, p, n)
        counted = (losses > 0).to(losses.dtype) if self.average_nonzero else torch.ones_like(losses)
        if self.reduction == "mean":
            return losses.sum() / counted.sum().clamp_min(1.0), (a, p, n)
        per_anchor = losses.new_zeros(B).index_add(0, a, losses)
        count = losses.new_zeros(B).index_add(0, a, counted)
        return per_anchor / count.clamp_min(1.0), (a, p, n)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, distance={self.distance!r}, normalize={self.normalize}, "
                f"miner={self.miner!r}, average_nonzero={self.average_nonzero}, reduction={self.reduction!r}")
