"""Online triplet miners for :class:`zoo.losses.TripletLoss` (vectorised, no Python loop over pairs).

A miner maps a detached pairwise distance matrix ``dist`` [B,B], the labels [B] and the margin ``alpha``
to index tensors ``(anchor, positive, negative)`` (int64, one entry per triplet). Positives share the
anchor's label (and are not the anchor itself); negatives have another label.

* ``"batch_all"``  every valid triplet (Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for
  Person Re-Identification", 2017, "BA"; averaging only the positive-loss ones, "BA!=0", is the loss's
  ``average_nonzero`` option).
* ``"batch_hard"`` per anchor the farthest positive and the closest negative (Hermans et al. 2017,
  "BH"); anchors without a positive or without a negative are left out.
* ``"semihard"``   FaceNet (Schroff, Kalenichenko & Philbin, CVPR 2015): for every anchor-positive pair
  all negatives with ``d(a,p) < d(a,n) < d(a,p) + alpha`` (the definition used by
  pytorch-metric-learning's ``TripletMarginMiner(type_of_triplets="semihard")``). Fallback: a pair with
  no semi-hard negative contributes no triplet (no switch to hard negatives, which FaceNet reports can
  collapse the model early in training); a batch with none at all is an empty batch for the loss.
* ``"openface_random"`` OpenFace (Amos et al. 2016, ``training/train.lua``): for every unordered
  anchor-positive pair (anchor = the earlier index) one negative drawn uniformly at random among those
  with ``d(a,n) - d(a,p) < alpha``; pairs without such a negative are skipped (as OpenFace does).
  Uses the global torch RNG (or ``generator``).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch

Triplets = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _masks(labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    pos = same.clone()
    pos.fill_diagonal_(False)
    return pos, ~same


def _pair_triplets(dist: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                   select: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]) -> Triplets:
    """All (a,p) with ``pos[a,p]``; negatives n with ``neg[a,n]`` and ``select(d_ap [P,1], d_an [P,B])``."""
    a, p = pos.nonzero(as_tuple=True)
    cand = neg[a]
    if select is not None:
        cand = cand & select(dist[a, p].unsqueeze(1), dist[a])
    k, n = cand.nonzero(as_tuple=True)
    return a[k], p[k], n


def batch_all(dist: torch.Tensor, labels: torch.Tensor, alpha: float,
              generator: Optional[torch.Generator] = None) -> Triplets:
    pos, neg = _masks(labels)
    return _pair_triplets(dist, pos, neg, None)


def semihard(dist: torch.Tensor, labels: torch.Tensor, alpha: float,
             generator: Optional[torch.Generator] = None) -> Triplets:
    pos, neg = _masks(labels)
    return _pair_triplets(dist, pos, neg, lambda dap, dan: (dan > dap) & (dan < dap + alpha))


def batch_hard(dist: torch.Tensor, labels: torch.Tensor, alpha: float,
               generator: Optional[torch.Generator] = None) -> Triplets:
    pos, neg = _masks(labels)
    valid = pos.any(1) & neg.any(1)
    p = dist.masked_fill(~pos, float("-inf")).argmax(1)
    n = dist.masked_fill(~neg, float("inf")).argmin(1)
    a = valid.nonzero(as_tuple=True)[0]
    return a, p[a], n[a]


def openface_random(dist: torch.Tensor, labels: torch.Tensor, alpha: float,
                    generator: Optional[torch.Generator] = None) -> Triplets:
    pos, neg = _masks(labels)
    a, p = torch.triu(pos, diagonal=1).nonzero(as_tuple=True)
    cand = neg[a] & (dist[a] - dist[a, p].unsqueeze(1) < alpha)
    score = torch.rand(cand.shape, device=dist.device, generator=generator)
    n = score.masked_fill(~cand, -1.0).argmax(1)
    keep = cand.any(1)
    return a[keep], p[keep], n[keep]


MINERS: Dict[str, Callable[..., Triplets]] = {
    "batch_all": batch_all,
    "batch_hard": batch_hard,
    "semihard": semihard,
    "openface_random": openface_random,
}
