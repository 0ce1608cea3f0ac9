"""Backgrounds behind the rendered face: an image folder (e.g. the Describable Textures Dataset, as in
Kortylewski et al. 2018/2019) or built-in procedural textures, or a uniform colour.

Procedural textures: a deterministic bank (seed 0) of ``bank_size`` textures of 1.5·S pixels, one of: value
noise (sum of octaves of bicubically upsampled random grids, amplitude 1/2^o), stripes (sin of a random
direction and frequency, optionally squared), linear/radial gradients, checkerboards and soft blobs. Each
image takes a random crop, a random flip/transpose and a random per-channel gain and offset of one bank entry.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _value_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, n, 3), np.float32)
    base = int(rng.integers(2, 6))
    for o in range(5):
        g = base * 2 ** o
        grid = rng.random((g + 1, g + 1, 3)).astype(np.float32)
        if rng.random() < 0.6:
            grid[:] = grid[..., :1]
        out += cv2.resize(grid, (n, n), interpolation=cv2.INTER_CUBIC) / 2 ** o
    return out


def _texture(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = int(rng.integers(5))
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    c1, c2 = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    if kind == 0:
        t = _value_noise(rng, n)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        return t * c1 + (1 - t) * c2 * rng.random()
    if kind == 1:
        a = rng.uniform(0, np.pi)
        f = rng.uniform(3, 20)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * f * (np.cos(a) * xx + np.sin(a) * yy) + rng.uniform(0, 6.3))
        if rng.random() < 0.5:
            s = (s > 0.5).astype(np.float32)
        return s[..., None] * c1 + (1 - s[..., None]) * c2
    if kind == 2:
        if rng.random() < 0.5:
            a = rng.uniform(0, 2 * np.pi)
            t = np.cos(a) * xx + np.sin(a) * yy
        else:
            t = np.hypot(xx - rng.random(), yy - rng.random())
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        return t[..., None] * c1 + (1 - t[..., None]) * c2
    if kind == 3:
        f = int(rng.integers(3, 14))
        s = ((np.floor(xx * f) + np.floor(yy * f)) % 2).astype(np.float32)
        return s[..., None] * c1 + (1 - s[..., None]) * c2
    t = np.zeros((n, n), np.float32)
    for _ in range(int(rng.integers(3, 12))):
        cx, cy, r = rng.random(), rng.random(), rng.uniform(0.05, 0.3)
        t += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2) * rng.uniform(-1, 1)
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    return t[..., None] * c1 + (1 - t[..., None]) * c2


class Backgrounds:
    """``kind``: "procedural" (default), "folder" (needs ``path``) or "uniform" (a random flat colour)."""

    def __init__(self, kind: str = "procedural", path: str | os.PathLike | None = None, image_size: int = 96,
                 bank_size: int = 32, max_cached: int = 512) -> None:
        if kind not in ("procedural", "folder", "uniform"):
            raise ValueError(f"background.kind must be 'procedural', 'folder' or 'uniform', got {kind!r}")
        self.kind, self.image_size, self.bank_size, self.max_cached = kind, int(image_size), int(bank_size), max_cached
        self.files: list[Path] = []
        self._bank: list[np.ndarray] | None = None
        self._cache: dict[int, np.ndarray] = {}
        if kind == "folder":
            if not path:
                raise ValueError("background.kind='folder' needs background.path (a folder of images)")
            root = Path(path)
            if not root.is_dir():
                raise FileNotFoundError(f"background folder {root} does not exist")
            self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not self.files:
                raise ValueError(f"background folder {root} holds no images (expected {', '.join(IMAGE_EXTENSIONS)})")
        elif kind == "procedural" and bank_size <= 0:
            raise ValueError(f"background.bank_size must be > 0, got {bank_size}")

    @property
    def bank(self) -> list[np.ndarray]:
        if self._bank is None:  # built lazily: in each DataLoader worker, from seed 0 (identical everywhere)
            rng = np.random.default_rng(0)
            n = int(self.image_size * 1.5)
            self._bank = [_texture(rng, n).astype(np.float32) for _ in range(self.bank_size)]
        return self._bank

    def _load(self, i: int) -> np.ndarray:
        img = self._cache.get(i)
        if img is None:
            f = self.files[i]
            raw = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if raw is None:
                raise ValueError(f"background image {f} cannot be read")
            h, w = raw.shape[:2]
            s = 1.25 * self.image_size / min(h, w)
            raw = cv2.resize(raw, (max(self.image_size, round(w * s)), max(self.image_size, round(h * s))),
                             interpolation=cv2.INTER_AREA)
            img = raw[..., ::-1].astype(np.float32) / 255.0
            if len(self._cache) < self.max_cached:
                self._cache[i] = img
        return img

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """One background [S,S,3] float32 in [0,1]."""
        s = size or self.image_size
        if self.kind == "uniform":
            return np.broadcast_to(rng.random(3).astype(np.float32), (s, s, 3)).copy()
        if self.kind == "folder":
            src = self._load(int(rng.integers(len(self.files))))
        else:
            src = self.bank[int(rng.integers(self.bank_size))]
        h, w = src.shape[:2]
        crop = int(min(h, w, max(s, round(min(h, w) * rng.uniform(0.6, 1.0)))))
        y0, x0 = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        out = src[y0:y0 + crop, x0:x0 + crop]
        if rng.random() < 0.5:
            out = out[:, ::-1]
        if rng.random() < 0.5:
            out = out.transpose(1, 0, 2)
        if crop != s:
            out = cv2.resize(np.ascontiguousarray(out), (s, s), interpolation=cv2.INTER_AREA if crop > s else
                             cv2.INTER_LINEAR)
        if self.kind == "procedural":
            out = out * rng.uniform(0.6, 1.2, 3).astype(np.float32) + rng.uniform(-0.1, 0.1, 3).astype(np.float32)
        return np.clip(out, 0.0, 1.0).astype(np.float32)
