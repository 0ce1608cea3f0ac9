"""Triplet loss (Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for Face Recognition
and Clustering", CVPR 2015) with online miners (:mod:`zoo.losses.miners`)::

    l(a, p, n) = max(0, d(a, p) - d(a, n) + alpha)

with ``d`` the squared Euclidean distance between L2-normalised embeddings and alpha = 0.2 by default
(the paper's; also OpenFace's, which seeds 000/001 train with batches of 20 identities x 15 images).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ._checks import check_embeddings, check_nonnegative, check_reduction
from ._reduction import compute_dtype
from .miners import MINERS

DISTANCES = ("squared_euclidean", "euclidean", "cosine")


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

    A batch without any triplet (e.g. a single identity) gives a zero loss that is still connected to the
    embeddings (``backward`` works, gradients are 0), never NaN; it increments ``num_empty_batches``.
    After each call ``last_num_triplets`` holds the number of mined triplets and ``last_triplets`` the
    ``(anchor, positive, negative)`` index tensors. Half-precision embeddings are computed in float32.
    """

    def __init__(self, margin: float = 0.2, distance: str = "squared_euclidean", normalize: bool = True,
                 miner: str = "semihard", average_nonzero: bool = False, reduction: str = "mean",
                 generator: Optional[torch.Generator] = None, validate_inputs: bool = True) -> None:
        super().__init__()
        self.margin = check_nonnegative("margin", margin)
        if distance not in DISTANCES:
            raise ValueError(f"distance={distance!r} is unknown; expected one of {DISTANCES}")
        if miner not in MINERS:
            raise ValueError(f"miner={miner!r} is unknown; expected one of {sorted(MINERS)}")
        self.distance = distance
        self.normalize = bool(normalize)
        self.miner = miner
        self.average_nonzero = bool(average_nonzero)
        self.reduction = check_reduction(reduction)
        self.generator = generator
        self.validate_inputs = bool(validate_inputs)
        self.num_empty_batches = 0
        self.last_num_triplets = 0
        self.last_triplets: Optional[tuple] = None

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.validate_inputs:
            check_embeddings(embeddings, labels)
        x = embeddings.to(compute_dtype(embeddings.dtype))
        if self.normalize:
            x = F.normalize(x, dim=1)
        dist = pairwise_distance(x, self.distance)
        a, p, n = MINERS[self.miner](dist.detach(), labels, self.margin, self.generator)
        self.last_triplets = (a, p, n)
        self.last_num_triplets = int(a.numel())
        B = embeddings.shape[0]
        if self.last_num_triplets == 0:
            self.num_empty_batches += 1
            zero = x.sum() * 0.0
            return zero.expand(B) + 0.0 if self.reduction == "none" else zero
        losses = F.relu(dist[a, p] - dist[a, n] + self.margin)
        if self.reduction == "sum":
            return losses.sum()
        counted = (losses > 0).to(losses.dtype) if self.average_nonzero else torch.ones_like(losses)
        if self.reduction == "mean":
            return losses.sum() / counted.sum().clamp_min(1.0)
        per_anchor = losses.new_zeros(B).index_add(0, a, losses)
        count = losses.new_zeros(B).index_add(0, a, counted)
        return per_anchor / count.clamp_min(1.0)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, distance={self.distance!r}, normalize={self.normalize}, "
                f"miner={self.miner!r}, average_nonzero={self.average_nonzero}, reduction={self.reduction!r}")
