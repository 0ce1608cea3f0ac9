"""Tensor validation shared by all losses in :mod:`zoo.losses` (constructor arguments: :mod:`zoo.checks`).

Every check raises :class:`ValueError` naming the argument, what was wrong and what was expected. Tensor
checks run at the start of ``forward`` (before any computation) and can be switched off per loss with
``validate_inputs=False``.
"""
from __future__ import annotations

from typing import Optional

import torch

def check_finite(name: str, x: torch.Tensor) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values; expected finite values")


def check_tensor(name: str, x, ndim: int, shape_text: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {shape_text}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must have shape {shape_text}, got {tuple(x.shape)}")


def check_landmarks(pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor]) -> None:
    """pred/target [B,L,2] finite (target may be non-finite where weight is 0), weight [B,L] / [L] >= 0."""
    check_tensor("pred", pred, 3, "[B, L, 2]")
    check_tensor("target", target, 3, "[B, L, 2]")
    if pred.shape[-1] != 2:
        raise ValueError(f"pred must have shape [B, L, 2], got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"target must have the same shape as pred {tuple(pred.shape)} ([B, L, 2]), "
                         f"got {tuple(target.shape)}")
    if not pred.is_floating_point():
        raise ValueError(f"pred must be a floating point tensor, got {pred.dtype}")
    check_finite("pred", pred)
    B, L = pred.shape[:2]
    if weight is None:
        check_finite("target", target)
        return
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"weight must be a torch.Tensor of shape [B, L] or [L] (B={B}, L={L}), "
                         f"got {type(weight).__name__}")
    if tuple(weight.shape) not in ((B, L), (L,)):
        raise ValueError(f"weight must have shape [B, L]=[{B}, {L}] or [L]=[{L}], got {tuple(weight.shape)}")
    if weight.dtype != torch.bool:
        if not weight.is_floating_point():
            raise ValueError(f"weight must be a float weight or a bool visibility mask, got {weight.dtype}")
        if not (torch.isfinite(weight).all() and (weight >= 0).all()):
            raise ValueError("weight must be finite and >= 0")
    used = (weight > 0).expand(B, L)
    if not torch.isfinite(target[used]).all():
        raise ValueError("target contains NaN or inf values at landmarks with weight > 0; "
                         "expected finite values (non-finite targets are only allowed where weight is 0)")


def check_embeddings(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """embeddings [B,D] finite float, labels [B] integer."""
    check_tensor("embeddings", embeddings, 2, "[B, D]")
    if not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a floating point tensor, got {embeddings.dtype}")
    check_tensor("labels", labels, 1, "[B]")
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"labels must have shape [B]=[{embeddings.shape[0]}] matching embeddings [B, D], "
                         f"got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    check_finite("embeddings", embeddings)
