"""The sample contract shared by every datamodule and model of zoo.

Samples are dicts of tensors, so any datamodule feeds any model of its task.

Landmark samples (``task == "landmarks"``):
    image      float32 [C, H, W]   normalised image of the input crop
    landmarks  float32 [L, 2]      pixel x, y in the input crop, 0-based, pixel-centre convention
    visible    bool    [L]         False for occluded / unlabelled points (excluded from losses and metrics)
    norm       float32 []          the dataset protocol's normalising distance (e.g. 300-W inter-ocular), same pixels
    index      int64   []          position of the sample in its dataset (the LPBB sampler keys on it)
    optional:  subset (str or int), attributes (bool [A]), and anything extra a datamodule documents.

Identity samples (``task == "identities"``):
    image      float32 [C, H, W]
    identity   int64   []          0..num_identities-1 within the split the dataset belongs to
    index      int64   []
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from zoo.checks import invalid

LANDMARK_KEYS = ("image", "landmarks", "visible", "norm", "index")
IDENTITY_KEYS = ("image", "identity", "index")
TASKS = ("landmarks", "identities")


@dataclass
class DataInfo:
    """What a datamodule yields; models read their sizes from it (train.py fills ``null`` model keys)."""

    task: str
    image_size: int
    channels: int
    scheme: str | None = None  # landmark scheme, e.g. "ibug68", "wflw98"
    num_landmarks: int | None = None
    num_identities: int | None = None
    flip_permutation: list[int] | None = None  # left/right landmark permutation for horizontal flips
    # names of the per-sample ``subset`` tags: ids [B] into this list, or [B, len] multi-hot flags (WFLW)
    subset_names: list[str] | None = None
    sizes: dict[str, int] = field(default_factory=dict)  # split name -> number of samples

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"DataInfo.task must be one of {TASKS}, got {self.task!r}")


def normaliser(mean: Any, std: Any, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``mean`` and ``std`` as [channels, 1, 1] tensors for ``image = (x - mean) / std``: one value or one
    per channel (``data.mean`` / ``data.std``), std > 0. ValueError naming the key."""
    out = []
    for key, value in (("data.mean", mean), ("data.std", std)):
        try:
            t = torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1, 1)
        except (TypeError, ValueError):
            raise invalid(key, value, "not a number or a list of numbers", f"one value or {channels}") from None
        if t.numel() not in (1, channels):
            raise invalid(key, value, f"{t.numel()} values for {channels} channel(s)", f"one value or {channels}")
        out.append(t.expand(channels, 1, 1).clone())
    if not torch.isfinite(out[0]).all():
        raise invalid("data.mean", mean, "not finite", "finite values")
    if not (torch.isfinite(out[1]).all() and (out[1] > 0).all()):
        raise invalid("data.std", std, "not finite and > 0", "finite values > 0")
    return out[0], out[1]


def check_sample(sample: Mapping[str, Any], task: str, where: str = "sample") -> None:
    """Raise ValueError naming the key when ``sample`` breaks the contract of ``task``."""
    keys = LANDMARK_KEYS if task == "landmarks" else IDENTITY_KEYS
    missing = [k for k in keys if k not in sample]
    if missing:
        raise ValueError(f"{where}: missing keys {missing} for task {task!r}; expected {list(keys)}")
    img = sample["image"]
    if not (torch.is_tensor(img) and img.dtype == torch.float32 and img.dim() == 3):
        raise ValueError(f"{where}: 'image' must be a float32 tensor [C,H,W], got {getattr(img, 'dtype', type(img))} "
                         f"{tuple(getattr(img, 'shape', ()))}")
    if task == "landmarks":
        lm = sample["landmarks"]
        if not (torch.is_tensor(lm) and lm.dim() == 2 and lm.shape[1] == 2):
            raise ValueError(f"{where}: 'landmarks' must be [L,2], got {tuple(getattr(lm, 'shape', ()))}")
        if not torch.isfinite(lm[sample["visible"]]).all():
            raise ValueError(f"{where}: 'landmarks' has NaN/inf coordinates on visible points")
        if sample["visible"].shape != lm.shape[:1]:
            raise ValueError(f"{where}: 'visible' must be [L]={lm.shape[0]}, got {tuple(sample['visible'].shape)}")
