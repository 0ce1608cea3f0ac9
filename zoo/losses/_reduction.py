"""The one place where per-sample loss values [B] are reduced (``"mean"``, ``"sum"``, ``"none"``)."""
from __future__ import annotations

import torch

from ..checks import check_choice

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    """``reduction`` is one of :data:`REDUCTIONS` (ValueError naming ``reduction`` otherwise)."""
    return check_choice("reduction", reduction, REDUCTIONS)


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"mean"``: mean over the batch, ``"sum"``: sum, ``"none"``: the values unchanged ([B]).

    An empty batch (``values`` of shape [0]) gives 0 for ``"mean"`` as for ``"sum"`` (not NaN), still connected
    to the graph of ``values`` (``backward`` works, gradients are 0), as PML's reducers do.
    """
    if reduction == "mean":
        return values.mean() if values.numel() else values.sum()
    if reduction == "sum":
        return values.sum()
    return values


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision inputs are computed in float32 (losses overflow float16 at errors ~1e3)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
