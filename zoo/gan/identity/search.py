"""New-identity search of seed 003 (Vine §4.1.3): identity vectors that are far from the data's identities and
from each other, and that the face generator can actually draw (its faces come back to the same identity).

Algorithm (paper's numbering), with Euclidean distances between unit identity vectors:

1. sample ``I_original ~ P_I``; 2. ``I_last = IDS[-1]``; 3. ``I_recent ~ IDS[-10:-1]``;
4. ``I_start = −I_original`` (the other side of the hypersphere);
5. ``I_initial = argmin_I Σ_c (‖I − c‖ − α_S)²`` over ``c ∈ {I_original, I_last, I_recent}``, subject to
   ``‖I‖ = 1``, from ``I_start`` (SciPy SLSQP);
6.–7. ``I_new = f_I(G(I_initial, A))``, ``A ~ P_A``;
8. reject when ``‖I_new − I_k‖ < α_I`` for any found ``I_k``;
9.–13. draw ``images_per_identity`` faces ``G(I_new, A)``, ``A ~ P_A``: each must satisfy
   ``‖f_I(x) − I_new‖ ≤ α_M`` and ``min_p ‖f_I(x) − p‖ ≥ α_U`` over all ``p ∈ P_I``; the paper's retry scheme is
   kept: a failing face is redrawn with another ``A`` up to ``image_retries`` times before the candidate is
   rejected; 14. accept ``I_new``.

Paper thresholds (FaceNet, 512-d unit vectors): α_S = 1.3 (= the mean non-matching distance of its data set,
Table 1), α_I = 0.95, α_M = 0.7, α_U = 0.6. Another identity encoder has another distance range;
:func:`scaled_thresholds` multiplies all four by ``mean non-matching distance of P_I / 1.3`` (the definition of
α_S), which keeps their ratios. The search is bounded: at most ``max_attempts`` candidates; it returns what it
found with the rejection counts, never loops forever. Pure numpy/scipy/torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from zoo.checks import check_int, check_positive, invalid

PAPER_THRESHOLDS = {"search": 1.3, "ids": 0.95, "match": 0.7, "unique": 0.6}
PAPER_NONMATCH_MEAN = 1.3  # seed 003 Table 1: FaceNet mean non-matching distance on its Original set = α_S


@dataclass
class Thresholds:
    """α_S (``search``), α_I (``ids``), α_M (``match``), α_U (``unique``): Euclidean distances."""
    search: float = 1.3
    ids: float = 0.95
    match: float = 0.7
    unique: float = 0.6

    def __post_init__(self) -> None:
        for k in ("search", "ids", "match", "unique"):
            v = check_positive(f"thresholds.{k}", getattr(self, k))
            if v > 2.0:
                raise invalid(f"thresholds.{k}", v, "larger than 2, the largest distance between unit vectors",
                              "a distance in (0, 2]")

    def as_dict(self) -> dict[str, float]:
        return {"search": self.search, "ids": self.ids, "match": self.match, "unique": self.unique}


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[len(a), len(b)]`` (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def mean_nonmatching_distance(vectors: np.ndarray, labels: np.ndarray, pairs: int = 3000, seed: int = 0) -> float:
    """Mean distance of up to ``pairs`` random pairs of vectors with different labels."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("mean_nonmatching_distance: need at least two identities")
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(labels), (2, pairs * 4))
    keep = labels[i] != labels[j]
    i, j = i[keep][:pairs], j[keep][:pairs]
    v = np.asarray(vectors, np.float64)
    return float(np.linalg.norm(v[i] - v[j], axis=1).mean())


def scaled_thresholds(vectors: np.ndarray, labels: np.ndarray, base: dict[str, float] | None = None,
                      seed: int = 0) -> Thresholds:
    """The paper's thresholds times ``mean non-matching distance(vectors) / 1.3`` (see module docstring)."""
    s = mean_nonmatching_distance(vectors, labels, seed=seed) / PAPER_NONMATCH_MEAN
    base = dict(PAPER_THRESHOLDS if base is None else base)
    return Thresholds(**{k: min(2.0, float(v) * s) for k, v in base.items()})


def sphere_point(start: np.ndarray, centres: np.ndarray, distance: float, max_iter: int = 200) -> tuple[np.ndarray, bool]:
    """Step 5: the unit vector nearest (from ``start``, SLSQP) to being ``distance`` from every row of
    ``centres``: minimise ``Σ_c (‖I − c‖ − distance)²`` s.t. ``‖I‖² = 1``. Returns (vector, solver success)."""
    from scipy.optimize import minimize

    C = np.asarray(centres, np.float64)

    def f(x: np.ndarray) -> float:
        return float(((np.linalg.norm(x[None] - C, axis=1) - distance) ** 2).sum())

    def grad(x: np.ndarray) -> np.ndarray:
        diff = x[None] - C
        n = np.maximum(np.linalg.norm(diff, axis=1, keepdims=True), 1e-12)
        return (2 * (n - distance) * diff / n).sum(0)

    cons = {"type": "eq", "fun": lambda x: float(x @ x - 1.0), "jac": lambda x: 2 * x}
    res = minimize(f, np.asarray(start, np.float64), jac=grad, constraints=[cons], method="SLSQP",
                   options={"maxiter": max_iter})
    x = res.x / max(np.linalg.norm(res.x), 1e-12)
    return x, bool(res.success)


@dataclass
class SearchResult:
    identities: np.ndarray             # [K, D] found unit identity vectors (I_new)
    image_embeddings: np.ndarray       # [K, images_per_identity, D] f_I of the accepted faces
    image_attributes: np.ndarray       # [K, images_per_identity] rows of P_A used for them
    counts: dict[str, int] = field(default_factory=dict)  # attempts, found, rejections by reason
    seconds: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def per_minute(self) -> float:
        return 60.0 * len(self.identities) / max(self.seconds, 1e-9)


EmbedSynth = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def search_new_identities(identity_vectors: np.ndarray, attribute_vectors: np.ndarray, embed_synth: EmbedSynth,
                          count: int, thresholds: Thresholds | None = None, images_per_identity: int = 200,
                          image_retries: int = 3, max_attempts: int | None = None, seed: int = 0,
                          batch_size: int = 256, log: Callable[[str], None] | None = None) -> SearchResult:
    """Find up to ``count`` new identities (module docstring).

    Args:
        identity_vectors: ``P_I`` [N, D], unit identity vectors of the data's images.
        attribute_vectors: ``P_A`` [M, A], attribute vectors of the data's images.
        embed_synth: ``(identities [B, D], attributes [B, A]) -> f_I(G(identities, attributes))`` [B, D].
        images_per_identity: faces each new identity must produce within α_M of it and α_U from P_I (paper 200).
        image_retries: draws per required face (the paper's retry scheme); the candidate fails when
            ``images_per_identity · image_retries`` draws gave too few passing faces.
        max_attempts: candidates tried at most (default ``50 · count``).
    """
    th = thresholds or Thresholds()
    count = check_int("search.count", count, low=1)
    images_per_identity = check_int("search.images_per_identity", images_per_identity, low=1)
    image_retries = check_int("search.image_retries", image_retries, low=1)
    max_attempts = check_int("search.max_attempts", max_attempts if max_attempts is not None else 50 * count, low=1)
    P = np.asarray(identity_vectors, np.float64)
    A = np.asarray(attribute_vectors, np.float32)
    if P.ndim != 2 or len(P) < 1 or A.ndim != 2 or len(A) < 1:
        raise ValueError(f"search_new_identities: identity_vectors [N, D] and attribute_vectors [M, A] needed, got "
                         f"{P.shape} and {A.shape}")
    rng = np.random.default_rng(seed)
    ids: list[np.ndarray] = []
    embs: list[np.ndarray] = []
    attrs: list[np.ndarray] = []
    counts = {"attempts": 0, "found": 0, "solver_not_converged": 0, "too_close_to_new": 0,
              "faces_not_matching": 0, "faces_too_close_to_data": 0}
    t0 = time.perf_counter()

    def synth(identity: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(rows), batch_size):
            r = rows[s:s + batch_size]
            idt = torch.as_tensor(np.repeat(identity[None], len(r), 0), dtype=torch.float32)
            with torch.no_grad():
                e = embed_synth(idt, torch.as_tensor(A[r]))
            out.append(torch.nn.functional.normalize(e.float(), dim=1).cpu().numpy().astype(np.float64))
        return np.concatenate(out)

    while len(ids) < count and counts["attempts"] < max_attempts:
        counts["attempts"] += 1
        original = P[rng.integers(len(P))]
        centres = [original]
        if ids:
            centres.append(ids[-1])
        if len(ids) >= 2:
            recent = ids[-10:-1]
            centres.append(recent[rng.integers(len(recent))])
        initial, ok = sphere_point(-original, np.stack(centres), th.search)
        if not ok:
            counts["solver_not_converged"] += 1  # the point is still used (closest found), as SLSQP returns it
        new = synth(initial, rng.integers(len(A), size=1))[0]
        if ids and pairwise_distances(new[None], np.stack(ids)).min() < th.ids:
            counts["too_close_to_new"] += 1
            continue
        rows = rng.integers(len(A), size=images_per_identity * image_retries)
        e = synth(new, rows)
        match = np.linalg.norm(e - new[None], axis=1) <= th.match
        unique = pairwise_distances(e, P).min(1) >= th.unique
        good = np.flatnonzero(match & unique)
        if len(good) < images_per_identity:
            # the reason of the candidate's failure: the check more faces failed
            key = "faces_not_matching" if (~match).sum() >= (~unique).sum() else "faces_too_close_to_data"
            counts[key] += 1
            continue
        good = good[:images_per_identity]
        ids.append(new)
        embs.append(e[good])
        attrs.append(rows[good])
        counts["found"] += 1
        if log is not None:
            log(f"new identity {len(ids)}/{count} after {counts['attempts']} attempts")
    D = P.shape[1]
    return SearchResult(np.stack(ids) if ids else np.zeros((0, D)),
                        np.stack(embs) if embs else np.zeros((0, images_per_identity, D)),
                        np.stack(attrs) if attrs else np.zeros((0, images_per_identity), np.int64),
                        counts, time.perf_counter() - t0, th.as_dict())
