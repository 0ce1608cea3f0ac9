"""Embedding heads that turn pooled backbone features into a face embedding.

* ``"bn_dropout_fc_bn"`` (ArcFace's "E" output, Deng et al., "ArcFace: Additive angular margin loss for deep
  face recognition", CVPR 2019, Sec. 3.2; used with dropout 0.5 by Vine (seed 003)):
  ``e = BN_1d(W · Dropout(BN_1d(f)) + b)`` with a 512-d output by default. The final BN has no affine
  scale (as in insightface's ``features`` layer the scale is fixed to 1), the embedding is *not* normalised
  here — margin losses normalise it themselves and :class:`~zoo.models.recognition.EmbeddingModel`
  L2-normalises the model output.
* ``"linear"`` (FaceNet / OpenFace, Schroff et al. CVPR 2015): ``e = W f + b`` (128-d), followed by L2
  normalisation in the model.
"""
from __future__ import annotations

import torch
from torch import nn

HEAD_KINDS = ("bn_dropout_fc_bn", "linear")


class EmbeddingHead(nn.Module):
    """Pooled features ``[B, in_features]`` -> embedding ``[B, embedding_dim]`` (un-normalised)."""

    def __init__(self, in_features: int, embedding_dim: int = 512, kind: str = "bn_dropout_fc_bn",
                 dropout: float = 0.5) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ValueError(f"model.head must be one of {list(HEAD_KINDS)}, got {kind!r}")
        if not isinstance(embedding_dim, int) or embedding_dim <= 0:
            raise ValueError(f"model.embedding_dim must be a positive integer, got {embedding_dim!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout!r}")
        self.kind, self.in_features, self.embedding_dim = kind, in_features, embedding_dim
        if kind == "linear":
            self.layers = nn.Sequential(nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                                        nn.Linear(in_features, embedding_dim))
        else:
            bn_out = nn.BatchNorm1d(embedding_dim)
            nn.init.constant_(bn_out.weight, 1.0)
            bn_out.weight.requires_grad_(False)  # insightface: features BN with scale fixed to 1
            self.layers = nn.Sequential(nn.BatchNorm1d(in_features), nn.Dropout(dropout),
                                        nn.Linear(in_features, embedding_dim), bn_out)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (features.dim() != 2 or features.shape[1] != self.in_features):
            raise ValueError(f"EmbeddingHead expects pooled features [B, {self.in_features}], "
                             f"got {tuple(features.shape)}")
        return self.layers(features)
