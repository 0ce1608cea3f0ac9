"""InterFaceGAN attribute directions (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face
Editing", CVPR 2020) with labels computed from the generated images themselves (no hub classifier).

Labelling functions (``ATTRIBUTES[name](images [B, 3, 64, 64] in [-1, 1], landmarks=None) -> scores [B]``):

- ``brightness``: mean luma ``0.299 R + 0.587 G + 0.114 B`` (in [0, 1]) over the central face box;
- ``colour_temperature``: mean ``R - B`` over the same box (warm > 0 > cool);
- ``yaw``: ``(x_30 - (x_0 + x_16) / 2) / (x_16 - x_0)``: nose tip offset from the jaw's midpoint, in face widths;
- ``mouth_open``: inner-lip gap ``||p_62 - p_66|| / ||p_36 - p_45||`` (inter-ocular);
- ``smile``: mouth width ``||p_48 - p_54|| / ||p_36 - p_45||``.

The last three use 68-point iBUG landmarks (dlib by default, computed once per image set).

Fitting (:func:`fit_directions`): sample ``n_samples`` z ~ N(0, I), generate, score; the lowest and highest
``quantile`` of each score become the negative / positive class; a linear SVM on z (scikit-learn's
``LinearSVC``; a hinge-loss fit in torch when scikit-learn is absent) separates them; the unit normal
``n = w / ||w||`` is the direction. Held-out accuracy on ``holdout`` of the labelled samples is stored.
Conditional manipulation (InterFaceGAN §2.2): ``n_cond = (I - N (NᵀN)⁻¹ Nᵀ) n / ||·||`` with ``N`` the
condition normals as columns, so moving along ``n_cond`` leaves the conditioned attributes' SVM scores unchanged.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from zoo.checks import check_choice, check_fraction, check_int, check_number, invalid

__all__ = ["Attribute", "ATTRIBUTES", "Directions", "fit_directions", "edit", "default_cache_dir", "CACHE_ENV"]

CACHE_ENV = "ZOO_GAN_CACHE"
# central face box of a 64-px generated / aligned face (rows, cols), from the mean landmark shape
_FACE_ROWS, _FACE_COLS = slice(24, 56), slice(16, 48)


def default_cache_dir() -> Path:
    """``$ZOO_GAN_CACHE`` or ``~/.cache/zoo/gan``: where fitted encoders and directions are kept."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "zoo" / "gan").expanduser()


def _rgb01(images: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(images).float()
    if x.dim() != 4 or x.shape[1] != 3:
        raise invalid("images", f"tensor {tuple(x.shape)}", "wrong shape", "[B, 3, H, W] in [-1, 1]")
    return (x + 1.0) / 2.0


def _face_box(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] / 64.0
    r0, r1, c0, c1 = (int(round(v * h)) for v in (_FACE_ROWS.start, _FACE_ROWS.stop, _FACE_COLS.start, _FACE_COLS.stop))
    return x[..., r0:r1, c0:c1]


def brightness(images: torch.Tensor, landmarks: Any = None) -> np.ndarray:
    x = _face_box(_rgb01(images))
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean((1, 2)).cpu().numpy()


def colour_temperature(images: torch.Tensor, landmarks: Any = None) -> np.ndarray:
    x = _face_box(_rgb01(images))
    return (x[:, 0] - x[:, 2]).mean((1, 2)).cpu().numpy()


def _iod(p: np.ndarray) -> np.ndarray:
    return np.maximum(np.linalg.norm(p[:, 36] - p[:, 45], axis=1), 1e-6)


def yaw(images: Any, landmarks: np.ndarray) -> np.ndarray:
    p = np.asarray(landmarks, np.float64)
    width = np.maximum(p[:, 16, 0] - p[:, 0, 0], 1e-6)
    return (p[:, 30, 0] - (p[:, 0, 0] + p[:, 16, 0]) / 2) / width


def mouth_open(images: Any, landmarks: np.ndarray) -> np.ndarray:
    p = np.asarray(landmarks, np.float64)
    return np.linalg.norm(p[:, 62] - p[:, 66], axis=1) / _iod(p)


def smile(images: Any, landmarks: np.ndarray) -> np.ndarray:
    p = np.asarray(landmarks, np.float64)
    return np.linalg.norm(p[:, 48] - p[:, 54], axis=1) / _iod(p)


@dataclass(frozen=True)
class Attribute:
    """A labelling function; ``needs_landmarks`` ones get 68-point landmarks (detected with dlib when not given)."""

    name: str
    fn: Callable[..., np.ndarray]
    needs_landmarks: bool = False

    def __call__(self, images: Any, landmarks: np.ndarray | None = None, detector: Any = "dlib") -> np.ndarray:
        if self.needs_landmarks and landmarks is None:
            from zoo.gan.detectors import load_detector, to_uint8

            landmarks = load_detector(detector)(to_uint8(images))
        return np.asarray(self.fn(images, landmarks), np.float64)


ATTRIBUTES: dict[str, Attribute] = {
    "brightness": Attribute("brightness", brightness),
    "colour_temperature": Attribute("colour_temperature", colour_temperature),
    "yaw": Attribute("yaw", yaw, True),
    "mouth_open": Attribute("mouth_open", mouth_open, True),
    "smile": Attribute("smile", smile, True),
}


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-12:
        raise ValueError("direction has zero length (the condition directions span it); drop a condition")
    return v / n


@dataclass
class Directions:
    """Unit normals of the attribute hyperplanes in z. ``dirs[name]`` -> float32 tensor [D];
    ``dirs.conditional(name, condition=[...])`` -> the normal with the conditions projected out."""

    names: list[str]
    normals: np.ndarray                      # [K, D] float64, unit rows
    accuracy: dict[str, float] = field(default_factory=dict)   # held-out SVM accuracy per attribute
    generator_hash: str = ""
    offsets: dict[str, float] = field(default_factory=dict)   # SVM intercept / ||w|| (z·n + b > 0: positive)

    def __getitem__(self, name: str) -> torch.Tensor:
        check_choice("attribute", name, self.names)
        return torch.from_numpy(self.normals[self.names.index(name)].astype(np.float32))

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def conditional(self, name: str, condition: Sequence[str] | str = ()) -> torch.Tensor:
        check_choice("attribute", name, self.names)
        condition = [condition] if isinstance(condition, str) else list(condition)
        for c in condition:
            check_choice("condition", c, self.names)
        n = self.normals[self.names.index(name)]
        cond = [c for c in condition if c != name]
        if cond:
            N = self.normals[[self.names.index(c) for c in cond]].T  # [D, k]
            n = n - N @ np.linalg.solve(N.T @ N, N.T @ n)
        return torch.from_numpy(_unit(n).astype(np.float32))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"names": self.names, "accuracy": self.accuracy, "generator_hash": self.generator_hash, "offsets": self.offsets}
        with open(path, "wb") as f:
            np.savez(f, normals=self.normals, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, generator: Any = None) -> "Directions":
        """Read a file written by :meth:`save`; with ``generator`` the file must come from the same weights."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                normals, meta = f["normals"], json.loads(str(f["meta"]))
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a zoo.gan directions file ({e}); expected one written by Directions.save") from e
        d = cls(list(meta["names"]), np.asarray(normals, np.float64), dict(meta.get("accuracy", {})),
                str(meta.get("generator_hash", "")), dict(meta.get("offsets", {})))
        if generator is not None and d.generator_hash != getattr(generator, "weights_hash", d.generator_hash):
            raise ValueError(f"{path}: directions were fitted for generator weights {d.generator_hash}, not "
                             f"{generator.weights_hash} ({getattr(generator, 'name', '?')}); refit them with fit_directions")
        return d


def _linear_svm(X: np.ndarray, y: np.ndarray, C: float, seed: int) -> tuple[np.ndarray, float]:
    """(w, b) of a linear SVM, sign(X·w + b) predicts y in {0, 1}."""
    try:
        from sklearn.svm import LinearSVC
    except ImportError:  # hinge-loss fit in torch (same objective: ||w||²/2 + C Σ hinge)
        g = torch.Generator().manual_seed(seed)
        Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(2.0 * y - 1.0).float()
        w = (torch.randn(X.shape[1], generator=g) * 0.01).requires_grad_(True)
        b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = 0.5 * (w ** 2).sum() + C * torch.clamp(1 - yt * (Xt @ w + b), min=0).pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return w.detach().numpy().astype(np.float64), float(b.item())
    svm = LinearSVC(C=C, max_iter=20000, random_state=seed)
    svm.fit(X, y)
    return svm.coef_[0].astype(np.float64), float(svm.intercept_[0])


def _cache_key(G: Any, names: Sequence[str], **params: Any) -> str:
    blob = json.dumps({"g": getattr(G, "weights_hash", ""), "names": list(names), **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@torch.no_grad()
def fit_directions(G: Any, names: Sequence[str] | None = None, n_samples: int = 3000, seed: int = 0,
                   quantile: float = 0.3, holdout: float = 0.2, C: float = 0.1, detector: Any = "dlib",
                   batch_size: int = 100, cache_dir: str | os.PathLike | None | bool = None) -> Directions:
    """Fit one InterFaceGAN direction per attribute (see module docstring). Results are cached in
    ``cache_dir`` (default :func:`default_cache_dir`; ``False`` disables) keyed on the generator's weights hash
    and every argument, so a second call is instant and another generator never reuses them."""
    names = list(ATTRIBUTES) if names is None else [names] if isinstance(names, str) else list(names)
    if not names:
        raise invalid("attributes", names, "empty", f"some of {list(ATTRIBUTES)}")
    for n in names:
        check_choice("attribute", n, list(ATTRIBUTES))
    n_samples = check_int("n_samples", n_samples, low=20)
    quantile = check_number("quantile", quantile, low=0.0, high=0.5, high_inclusive=True)
    holdout = check_number("holdout", holdout, low=0.0, high=1.0, low_inclusive=True)
    key = _cache_key(G, names, n=n_samples, seed=seed, q=quantile, h=holdout, C=C,
                     det=detector if isinstance(detector, str) else getattr(detector, "__qualname__", type(detector).__name__))
    path = None
    if cache_dir is not False:
        path = Path(cache_dir or default_cache_dir()) / f"directions-{getattr(G, 'name', 'g')}-{key}.npz"
        if path.is_file():
            return Directions.load(path, generator=G)
    z = G.sample_z(n_samples, seed=seed)
    scores = {n: [] for n in names}
    det = None
    if any(ATTRIBUTES[n].needs_landmarks for n in names):
        from zoo.gan.detectors import load_detector, to_uint8

        det = load_detector(detector)
    for i in range(0, n_samples, batch_size):
        x = G(z[i:i + batch_size]).cpu()
        lm = det(to_uint8(x)) if det is not None else None
        for n in names:
            scores[n].append(ATTRIBUTES[n](x, lm))
    Z = z.cpu().numpy().astype(np.float64)
    rng = np.random.default_rng(seed)
    normals, acc, offsets = [], {}, {}
    for n in names:
        s = np.concatenate(scores[n])
        lo, hi = np.quantile(s, [quantile, 1 - quantile])
        idx = np.flatnonzero((s <= lo) | (s >= hi))
        y = (s[idx] >= hi).astype(np.int64)
        perm = rng.permutation(len(idx))
        n_test = int(round(holdout * len(idx)))
        test, train = perm[:n_test], perm[n_test:]
        w, b = _linear_svm(Z[idx[train]], y[train], C, seed)
        norm = np.linalg.norm(w)
        normals.append(w / norm)
        offsets[n] = b / norm
        if n_test:
            acc[n] = float(((Z[idx[test]] @ w + b > 0).astype(np.int64) == y[test]).mean())
    d = Directions(names, np.stack(normals), acc, getattr(G, "weights_hash", ""), offsets)
    if path is not None:
        d.save(path)
    return d


MAX_ALPHA = 10.0


@torch.no_grad()
def edit(G: Any, latent: Any, direction: Any, alpha: Any) -> torch.Tensor:
    """Images of ``latent`` moved along a unit ``direction`` [D] by ``alpha`` (scalar or [N]):
    ``G.decode(Latent(z + α·n, residual))``. ``latent``: a :class:`zoo.gan.Latent` or z [N, D].
    |α| ≤ 10 (z ~ N(0, I) has norm ≈ 10 in 100-d: larger steps leave the training distribution)."""
    from zoo.gan.inversion import Latent

    if not isinstance(latent, Latent):
        latent = Latent(torch.as_tensor(latent, dtype=torch.float32))
    z = latent.z
    n = torch.as_tensor(direction, dtype=z.dtype).reshape(-1).to(z.device)
    if n.numel() != z.shape[1]:
        raise invalid("direction", f"vector of {n.numel()}", "wrong length", f"a [{z.shape[1]}] direction")
    a = torch.as_tensor(alpha, dtype=z.dtype).reshape(-1).to(z.device)
    if a.numel() == 1:
        a = a.expand(len(z))
    if a.numel() != len(z):
        raise invalid("alpha", f"{a.numel()} values", f"does not match {len(z)} latents", "a scalar or one value per latent")
    bad = ~torch.isfinite(a) | (a.abs() > MAX_ALPHA)
    if bad.any():
        raise invalid("alpha", float(a[bad][0]), "out of range", f"a finite number in [-{MAX_ALPHA}, {MAX_ALPHA}]")
    moved = Latent(z + a[:, None] * n[None, :], latent.residual)
    return G.decode(moved)
