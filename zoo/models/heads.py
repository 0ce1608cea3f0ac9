"""Regression heads on top of pooled backbone features."""
from __future__ import annotations

import torch
from torch import nn


class LandmarkHead(nn.Module):
    """The two fully connected layers of seed 002 (Fuhl & Kasneci, ICMV 2019, Fig. 3).

        h = ReLU(BN(W1 f + b1));   o = W2 h + b2,   o ∈ R^{k·L}

    with ``k = 3`` (x, y and the validation signal per landmark) when ``validation`` is True, else ``k = 2``.
    Returns ``(offsets [B, L, 2], validation [B, L] or None)`` in units of the output; the model scales
    and anchors them (see :class:`zoo.models.landmark.LandmarkRegressor`). The last layer starts with
    small weights (std ``init_std``) and zero bias, so the first predictions sit on the model's anchor.
    """

    def __init__(self, in_features: int, num_landmarks: int, hidden: int = 256, validation: bool = True,
                 dropout: float = 0.0, init_std: float = 1e-3) -> None:
        super().__init__()
        if num_landmarks is None or num_landmarks <= 0:
            raise ValueError(f"model.num_landmarks must be a positive integer, got {num_landmarks!r}")
        if hidden <= 0:
            raise ValueError(f"model.head_hidden must be a positive integer, got {hidden!r}")
        self.num_landmarks = num_landmarks
        self.validation = validation
        k = 3 if validation else 2
        self.fc1 = nn.Sequential(nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout) if dropout > 0 else nn.Identity())
        self.fc2 = nn.Linear(hidden, k * num_landmarks)
        nn.init.normal_(self.fc2.weight, std=init_std)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        o = self.fc2(self.fc1(features)).view(features.shape[0], self.num_landmarks, -1)
        if self.validation:
            return o[..., :2], o[..., 2]
        return o, None


class ValidationHead(nn.Module):
    """A separate validation-signal head (zoo extension of seed 002): ``v = W2 ReLU(BN(W1 f)) + b2`` ∈ R^L, one
    value per landmark, on (detached) backbone features; the last layer starts at zero like
    :class:`LandmarkHead`'s."""

    def __init__(self, in_features: int, num_landmarks: int, hidden: int = 256, init_std: float = 1e-3) -> None:
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.ReLU(inplace=True))
        self.fc2 = nn.Linear(hidden, num_landmarks)
        nn.init.normal_(self.fc2.weight, std=init_std)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(features))
