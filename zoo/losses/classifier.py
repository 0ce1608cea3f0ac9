"""Normalised classifier: the class centres of the margin losses, and Partial FC sampling.

With L2-normalised embedding ``x_i`` and L2-normalised class centres ``W_j`` (``K`` sub-centres
``W_jk`` per class, Sub-center ArcFace, Deng et al., ECCV 2020)::

    cos(theta_ij) = max_k (W_jk / ||W_jk||) . (x_i / ||x_i||)

Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single Machine", ICCVW 2021;
insightface ``recognition/arcface_torch/partial_fc_v2.py``): with ``sample_rate = r < 1`` each training
step uses only ``S = max(int(r * C), P)`` classes: all ``P`` positive classes of the batch plus ``S - P``
negatives drawn uniformly without replacement. The softmax runs over those ``S`` columns; centres that
were not drawn get no gradient that step. ``r = 1`` (default) or eval mode uses every class (exact).

DDP: the centres are **replicated** (each rank holds all ``C x K`` rows, DDP all-reduces their
gradient). The positive set is the union of the labels of every rank (a ``[C]`` mask all-reduced with
MAX) and the sampled class set is drawn on rank 0 and broadcast, so every rank uses the same ``S``
classes, and the DDP loss equals the single-process loss on the concatenated batch.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_fraction, check_int
from ._reduction import compute_dtype


class _RowNormalise(torch.autograd.Function):
    """``y = w / max(||w_c||, eps)`` row-wise with a fused backward ``dw = (g - y (g . y)) / ||w||``: the same
    value and gradient as ``F.normalize(w, dim=1)``, in 3 passes over [C, D] instead of autograd's ~8 (the
    class-centre matrix is the largest tensor of the loss)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, eps: float) -> torch.Tensor:
        norm = torch.linalg.vector_norm(w, dim=1, keepdim=True).clamp_min_(eps)
        y = w / norm
        ctx.save_for_backward(y, norm)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        y, norm = ctx.saved_tensors
        dot = torch.linalg.vecdot(g, y, dim=1).unsqueeze(1)
        # rows with ||w|| < eps are divided by the constant eps: their gradient is g / eps (no projection)
        dot = dot.masked_fill_(norm <= ctx.eps, 0.0)
        return torch.addcmul(g, y, dot, value=-1.0).div_(norm), None


class NormalisedClassifier(nn.Module):
    """``cos(theta)`` [B, C] between normalised embeddings and the closest sub-centre of each class.

    Args:
        embedding_dim: D. num_classes: C. subcenters: K >= 1; ``self.weight`` is [C*K, D], row ``c*K + k``
            is sub-centre k of class c (initialised N(0, 0.01), like insightface).
        sample_rate: Partial FC rate r in (0, 1] (see the module docstring); used in training mode only.

    ``forward(embeddings [B, D], classes=None, scale=1.0) -> scale * cos [B, C]`` (= :meth:`cosine`; [B, S] for
    the class indices ``classes`` [S]); the scale is folded into the normalised embeddings [B, D] (cheaper than
    scaling [B, C]).
    ``sample(labels) -> (classes [S], labels remapped into [0, S))`` draws the Partial FC class set.
    """

    def __init__(self, embedding_dim: int, num_classes: int, subcenters: int = 1, sample_rate: float = 1.0) -> None:
        super().__init__()
        self.embedding_dim = check_int("embedding_dim", embedding_dim)
        self.num_classes = check_int("num_classes", num_classes)
        self.subcenters = check_int("subcenters", subcenters)
        self.sample_rate = check_fraction("sample_rate", sample_rate)
        self.weight = nn.Parameter(torch.empty(self.num_classes * self.subcenters, self.embedding_dim))
        nn.init.normal_(self.weight, 0.0, 0.01)

    def forward(self, embeddings: torch.Tensor, classes: Optional[torch.Tensor] = None,
                scale: float = 1.0) -> torch.Tensor:
        return self.cosine(embeddings, classes, scale)

    def cosine(self, embeddings: torch.Tensor, classes: Optional[torch.Tensor] = None,
               scale: float = 1.0) -> torch.Tensor:
        """``scale * cos(theta)`` [B, C] (or [B, S] for the class indices ``classes`` [S])."""
        dtype = compute_dtype(embeddings.dtype)
        x = F.normalize(embeddings.to(dtype), dim=1)
        if scale != 1.0:
            x = x * scale
        w = self.weight.to(dtype)
        if classes is not None:
            if self.subcenters > 1:
                rows = (classes[:, None] * self.subcenters + torch.arange(self.subcenters, device=classes.device))
                w = w[rows.reshape(-1)]
            else:
                w = w[classes]
        cos = F.linear(x, _RowNormalise.apply(w, 1e-12))
        if self.subcenters > 1:
            cos = cos.view(cos.shape[0], -1, self.subcenters).amax(-1)
        return cos

    @property
    def sampling(self) -> bool:
        """True when :meth:`sample` draws a subset (training mode and ``sample_rate < 1``)."""
        return self.training and self.sample_rate < 1.0

    def num_sampled(self, num_positive: int) -> int:
        """``S = max(int(r * C), P)`` (insightface's ``num_sample``, at least every positive class)."""
        return max(int(self.sample_rate * self.num_classes), num_positive)

    def sample(self, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Partial FC class set: ``(classes [S] sorted, labels remapped to positions in classes)``."""
        positive = torch.zeros(self.num_classes, dtype=torch.int32, device=labels.device)
        positive[labels] = 1
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1
        if distributed:  # replicated centres: the positives of every rank, one class set for all ranks
            torch.distributed.all_reduce(positive, op=torch.distributed.ReduceOp.MAX)
        s = self.num_sampled(int(positive.sum()))
        if not distributed or torch.distributed.get_rank() == 0:
            score = torch.rand(self.num_classes, device=labels.device)  # the global torch RNG
            score.masked_fill_(positive.bool(), 2.0)  # positives first (rand < 1)
            classes = score.topk(s, sorted=False).indices.sort().values
        else:
            classes = torch.empty(s, dtype=torch.long, device=labels.device)
        if distributed:
            torch.distributed.broadcast(classes, src=0)
        return classes, torch.searchsorted(classes, labels)

    def extra_repr(self) -> str:
        return (f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}, subcenters={self.subcenters}, "
                f"sample_rate={self.sample_rate}")


NormLinear = NormalisedClassifier
