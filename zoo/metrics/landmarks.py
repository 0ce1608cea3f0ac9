"""Facial landmark metrics (pure torch/numpy + torchmetrics; no Lightning, Hydra or W&B).

Per face i with visible landmarks V_i, prediction p and ground truth g (pixels) and normaliser d_i:

* **NME** (normalised mean error): e_i = (1/|V_i|) sum_{l in V_i} ||p_il - g_il||_2 / d_i; NME = mean_i e_i.
  d_i by ``normalization``:
    - ``"inter_ocular"``: distance of the outer eye corners (300-W / WFLW protocols; scheme indices),
    - ``"inter_pupil"``: distance of the eye centres (mean of each eye's points; seed 002 for 300-W),
    - ``"box"``: sqrt(w * h) of the bounding box of the visible ground-truth landmarks (AFLW protocol),
    - ``"given"``: the sample's ``norm`` (the datamodule's protocol distance).
* **Failure rate** FR@t = fraction of faces with e_i > t; **AUC@t** of the cumulative error distribution
  CED(x) = #{e_i <= x} / N integrated up to t and divided by t, which is exactly
  AUC@t = mean_i max(0, t - e_i) / t (no grid). Thresholds default to 0.08 and 0.10.
* **acc@a** (seed 000): fraction of all visible landmarks whose error is below a * D_i, D_i the diagonal
  of the bounding box of face i's visible ground-truth landmarks (a = 0.03, 0.05).
* **Validation signal** (seed 002, Table 5 / Fig. 4), when ``validation`` [B, L] is given:
  ``nme_discard{P}_val`` = NME after discarding per face the k_i = min(round(P% * |V_i|), |V_i| - 1)
  visible landmarks with the highest validation signal (round half up; ties: lower landmark index first);
  ``nme_discard{P}_random`` = the same with k_i landmarks chosen at random -- a seeded hash of
  (seed, sample index, landmark), so the choice does not depend on the order of updates (or DDP ranks)
  when ``index`` is passed; it estimates the plain NME (a random subset's mean is unbiased) and is the
  paper's baseline for models without a validation head. ``spearman`` / ``pearson``: correlation between
  the validation signal and the true pixel error over all visible landmarks (ties get average ranks).
* **Per subset** (``subset`` ids per sample, names from ``subset_names``): every value again as ``key/name``.

Faces without visible landmarks are excluded and counted in ``num_faces_no_visible``; faces whose visible
landmarks have a zero box diagonal are left out of acc@a and counted in ``num_faces_no_box``. When
``index`` is passed, a sample seen twice (DistributedSampler pads the last batch) is counted once.
States are concatenated across DDP ranks (``dist_reduce_fx="cat"``).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from zoo.checks import check_choice, check_int, check_number
from zoo.schemes import get_scheme

NORMALIZATIONS = ("inter_ocular", "inter_pupil", "box", "given")


# ---------------------------------------------------------------------------------------------------
# functional pieces (numpy)
# ---------------------------------------------------------------------------------------------------
def rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given their average rank (``scipy.stats.rankdata`` "average")."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]] if n else np.zeros(0, dtype=bool)
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    counts = np.diff(np.r_[first, n])
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks = np.empty(n)
    ranks[order] = avg[group]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN for fewer than two points or a constant input."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.size < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    return float(np.dot(xc, yc) / den) if den > 0 else math.nan


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation = Pearson correlation of the (average-tie) ranks."""
    return pearson(rankdata(x), rankdata(y))


def failure_rate(nme_face: np.ndarray, threshold: float) -> float:
    """Fraction of faces whose NME exceeds ``threshold``."""
    return float(np.mean(np.asarray(nme_face) > threshold)) if len(nme_face) else math.nan


def ced_auc(nme_face: np.ndarray, threshold: float) -> float:
    """Area under the CED curve on [0, threshold] divided by threshold = mean(max(0, t - e_i)) / t."""
    e = np.asarray(nme_face, dtype=np.float64)
    return float(np.mean(np.clip(threshold - e, 0.0, None)) / threshold) if e.size else math.nan


def ced_curve(nme_face: np.ndarray, max_error: float, num: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """(x, CED(x)) on ``num`` points of [0, max_error]: CED(x) = fraction of faces with NME <= x."""
    e = np.sort(np.asarray(nme_face, dtype=np.float64))
    x = np.linspace(0.0, max_error, num)
    return x, (np.searchsorted(e, x, side="right") / max(e.size, 1))


def hash_uniform(face_keys: np.ndarray, num_landmarks: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) of shape [N, L] from (seed, face key, landmark) via
    the splitmix64 finaliser: the same face gets the same numbers whatever its position in the data."""
    keys = np.asarray(face_keys, dtype=np.int64).astype(np.uint64)
    x = keys[:, None] * np.uint64(num_landmarks) + np.arange(num_landmarks, dtype=np.uint64)[None, :]
    x = x ^ np.uint64((int(seed) * 0x9E3779B97F4A7C15) % 2**64)
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def discard_keep_mask(scores: np.ndarray, visible: np.ndarray, fraction: float) -> np.ndarray:
    """Visible landmarks kept after dropping, per face, the k_i = min(round(fraction * |V_i|), |V_i| - 1)
    visible ones with the highest ``scores`` (round half up; ties: lower landmark index dropped first)."""
    vis = np.asarray(visible, dtype=bool)
    m = vis.sum(1)
    k = np.minimum(np.floor(fraction * m + 0.5).astype(np.int64), np.maximum(m - 1, 0))
    s = np.where(vis, scores, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(s.shape[1])[None, :].repeat(s.shape[0], 0), axis=1)
    return vis & ~(pos < k[:, None])


def _masked_face_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (np.where(mask, values, 0.0)).sum(1) / mask.sum(1)


def summarize(err_px: np.ndarray, visible: np.ndarray, norm: np.ndarray, diag: np.ndarray,
              validation: np.ndarray | None = None, face_keys: np.ndarray | None = None,
              thresholds: Sequence[float] = (0.08, 0.10), accuracy_thresholds: Sequence[float] = (0.03, 0.05),
              discard: Sequence[float] = (0.1, 0.2, 0.3), seed: int = 0) -> dict[str, float]:
    """All landmark metrics of one set of faces (see the module docstring).

    err_px [N, L] pixel errors, visible [N, L] bool, norm [N] normalisers, diag [N] box diagonals,
    validation [N, L] or None, face_keys [N] int (for the random discard; default the row number).
    """
    vis = np.asarray(visible, dtype=bool)
    faces = vis.any(1)
    n_no_vis = int((~faces).sum())
    err_px, vis, norm, diag = err_px[faces], vis[faces], norm[faces], diag[faces]
    res: dict[str, float] = {"num_faces": float(faces.sum()), "num_faces_no_visible": float(n_no_vis)}
    e = err_px / norm[:, None]
    nme_face = _masked_face_mean(e, vis) if len(e) else np.zeros(0)
    res["nme"] = float(nme_face.mean()) if nme_face.size else math.nan
    for t in thresholds:
        res[f"fr@{t:.2f}"] = failure_rate(nme_face, t)
        res[f"auc@{t:.2f}"] = ced_auc(nme_face, t)
    has_box = diag > 0
    res["num_faces_no_box"] = float((~has_box).sum())
    for a in accuracy_thresholds:
        ok = vis & has_box[:, None]
        rel = err_px[has_box] / diag[has_box][:, None]
        res[f"acc@{a:.2f}"] = float((rel[ok[has_box]] < a).mean()) if ok.any() else math.nan
    # Random discarding is the baseline of seed 002's Table 5 (for NON, which has no validation signal).
    keys = np.flatnonzero(faces) if face_keys is None else np.asarray(face_keys)[faces]
    rnd = hash_uniform(keys, vis.shape[1], seed) if len(keys) else np.zeros(vis.shape)
    val = None if validation is None else validation[faces]
    for f in discard:
        p = int(round(f * 100))
        for name, scores in (("val", val), ("random", rnd)):
            if scores is None:
                continue
            keep = discard_keep_mask(scores, vis, f)
            res[f"nme_discard{p}_{name}"] = float(_masked_face_mean(e, keep).mean()) if len(e) else math.nan
    if val is not None:
        res["spearman"] = spearman(val[vis], err_px[vis])
        res["pearson"] = pearson(val[vis], err_px[vis])
    return res


# ---------------------------------------------------------------------------------------------------
# torchmetrics Metric
# ---------------------------------------------------------------------------------------------------
def _check_fractions(key: str, values: Any, lo: float, hi: float, hi_open: bool) -> tuple[float, ...]:
    """``metrics.<key>``: one number or a sequence of numbers, each in (lo, hi) or (lo, hi]."""
    values = (values,) if isinstance(values, numbers.Real) else tuple(values)
    return tuple(check_number(f"metrics.{key}[{i}]", float(v) if isinstance(v, numbers.Real) else v, low=lo, high=hi,
                              high_inclusive=not hi_open) for i, v in enumerate(values))


class LandmarkMetrics(Metric):
    """NME / FR / AUC / acc@ / per-subset / validation-signal metrics of a landmark model, DDP-correct.

    Args:
        scheme: landmark scheme name (``zoo.schemes``, e.g. ``"ibug68"``); required for the eye-based
            normalisations, and then the number of landmarks must match it.
        normalization: one of ``"inter_ocular"``, ``"inter_pupil"``, ``"box"``, ``"given"``.
        thresholds: NME thresholds of the failure rate and CED AUC (default 0.08, 0.10).
        accuracy_thresholds: fractions of the box diagonal for acc@ (default 0.03, 0.05; seed 000).
        discard: fractions of landmarks per face discarded by validation signal / at random.
        subset_names: names of the integer subset ids (``subset`` may then also be given as names), or of
            the columns of multi-label ``subset`` flags [B, S] (WFLW attributes: a face counts in every
            subset whose flag is set).
        seed: seed of the random discarding.

    ``update(pred [B,L,2], target [B,L,2], visible [B,L] | None, norm [B] | None, validation [B,L] | None,
    subset [B] ids | names | [B, S] flags | None, index [B] | None)``; ``compute()`` returns ``dict[str, float]``; ``values()`` the
    concatenated per-face / per-landmark arrays for plots (:func:`ced_figure`, :func:`validation_figure`).
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, scheme: str | None = None, normalization: str = "inter_ocular",
                 thresholds: Sequence[float] = (0.08, 0.10), accuracy_thresholds: Sequence[float] = (0.03, 0.05),
                 discard: Sequence[float] = (0.1, 0.2, 0.3), subset_names: Sequence[str] | None = None,
                 seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_choice("metrics.normalization", normalization, NORMALIZATIONS)
        if normalization in ("inter_ocular", "inter_pupil") and scheme is None:
            raise ValueError(f"metrics.scheme: normalization {normalization!r} needs a landmark scheme "
                             f"(e.g. 'ibug68'); use normalization 'given' or 'box' without one")
        self.scheme = get_scheme(scheme) if scheme is not None else None
        self.normalization = normalization
        self.thresholds = _check_fractions("thresholds", thresholds, 0.0, math.inf, True)
        self.accuracy_thresholds = _check_fractions("accuracy_thresholds", accuracy_thresholds, 0.0, math.inf, True)
        self.discard = _check_fractions("discard", discard, 0.0, 1.0, True)
        self.subset_names = None if subset_names is None else [str(s) for s in subset_names]
        self.seed = check_int("metrics.seed", int(seed) if isinstance(seed, np.integer) else seed, 0)
        for name in ("err_px", "visible", "norm", "diag", "validation", "subset", "index", "flags"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    # ---- update ---------------------------------------------------------------------------------------
    def _normalizer(self, target: torch.Tensor, vis: torch.Tensor, norm: torch.Tensor | None) -> torch.Tensor:
        B = target.shape[0]
        if self.normalization == "given":
            if norm is None:
                raise ValueError("LandmarkMetrics.update: normalization 'given' needs 'norm' [B]")
            d = torch.as_tensor(norm).detach().to(device=target.device, dtype=torch.float64).reshape(-1)
            if d.numel() == 1:
                d = d.expand(B)
            if d.shape != (B,):
                raise ValueError(f"LandmarkMetrics.update: norm must be [B] = [{B}], got {tuple(d.shape)}")
            return d.clone()
        if self.normalization == "box":
            w, h, _ = _box(target, vis)
            return torch.sqrt(w * h)
        sc = self.scheme
        if self.normalization == "inter_ocular":
            pts = list(sc.outer_eye_corners)
            a, b = target[:, pts[0]], target[:, pts[1]]
        else:
            pts = list(sc.left_eye) + list(sc.right_eye)
            a, b = target[:, list(sc.left_eye)].mean(1), target[:, list(sc.right_eye)].mean(1)
        bad = ~vis[:, pts].all(1) & vis.any(1)
        if bad.any():
            raise ValueError(f"LandmarkMetrics.update: normalization {self.normalization!r} needs the eye points "
                             f"{pts} visible; batch samples {torch.nonzero(bad).flatten().tolist()[:20]} have some "
                             f"invisible (use normalization 'given' with the dataset's norm instead)")
        return torch.linalg.norm(a - b, dim=-1)

    def update(self, pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor | None = None,
               norm: torch.Tensor | None = None, validation: torch.Tensor | None = None,
               subset: Any = None, index: torch.Tensor | None = None) -> None:
        pred = torch.as_tensor(pred).detach().to(torch.float64)
        target = torch.as_tensor(target).detach().to(device=pred.device, dtype=torch.float64)
        if pred.dim() != 3 or pred.shape[-1] != 2 or pred.shape != target.shape:
            raise ValueError(f"LandmarkMetrics.update: pred and target must both be [B, L, 2], got "
                             f"{tuple(pred.shape)} and {tuple(target.shape)}")
        B, L = pred.shape[:2]
        if self.scheme is not None and L != self.scheme.num_landmarks:
            raise ValueError(f"LandmarkMetrics.update: scheme {self.scheme.name!r} has {self.scheme.num_landmarks} "
                             f"landmarks, the predictions have {L}")
        vis = torch.ones(B, L, dtype=torch.bool, device=pred.device) if visible is None else \
            torch.as_tensor(visible).to(device=pred.device, dtype=torch.bool)
        if vis.shape != (B, L):
            raise ValueError(f"LandmarkMetrics.update: visible must be [B, L] = {(B, L)}, got {tuple(vis.shape)}")
        for name, t in (("target", target), ("pred", pred)):
            bad = (~torch.isfinite(t).all(-1) & vis).any(1)
            if bad.any():
                raise ValueError(f"LandmarkMetrics.update: {name} has NaN/inf at visible landmarks of batch samples "
                                 f"{torch.nonzero(bad).flatten().tolist()[:20]}")
        has_vis = vis.any(1)
        t0 = torch.where(vis[..., None], target, torch.zeros((), dtype=target.dtype, device=target.device))
        d = self._normalizer(t0, vis, norm)
        bad = has_vis & ~(torch.isfinite(d) & (d > 0))
        if bad.any():
            raise ValueError(f"LandmarkMetrics.update: the {self.normalization!r} normaliser is not a positive "
                             f"finite number for batch samples {torch.nonzero(bad).flatten().tolist()[:20]} "
                             f"(values {d[bad][:20].tolist()})")
        d = torch.where(has_vis, d, torch.ones_like(d))
        err = torch.where(vis, torch.linalg.norm(torch.nan_to_num(pred - target), dim=-1), torch.zeros_like(d[:, None]))
        _, _, diag = _box(t0, vis)
        if validation is None:
            val = torch.full((B, L), math.nan, dtype=torch.float64, device=pred.device)
        else:
            val = torch.as_tensor(validation).detach().to(device=pred.device, dtype=torch.float64)
            if val.shape != (B, L):
                raise ValueError(f"LandmarkMetrics.update: validation must be [B, L] = {(B, L)}, "
                                 f"got {tuple(val.shape)}")
            bad = (~torch.isfinite(val) & vis).any(1)
            if bad.any():
                raise ValueError(f"LandmarkMetrics.update: validation has NaN/inf at visible landmarks of batch "
                                 f"samples {torch.nonzero(bad).flatten().tolist()[:20]}")
            val = torch.where(vis, val, torch.zeros_like(val))
        self.err_px.append(err)
        self.visible.append(vis.to(torch.uint8))
        self.norm.append(d)
        self.diag.append(diag)
        self.validation.append(val)
        if torch.is_tensor(subset) and subset.dim() == 2:  # multi-label attribute flags (WFLW)
            self.flags.append(self._subset_flags(subset, B, pred.device))
            subset = None
        self.subset.append(self._subset_ids(subset, B, pred.device))
        self.index.append(torch.full((B,), -1, dtype=torch.int64, device=pred.device) if index is None else
                          self._check_index(index, B, pred.device))

    @staticmethod
    def _check_index(index: Any, B: int, device: torch.device) -> torch.Tensor:
        idx = torch.as_tensor(index).to(device=device, dtype=torch.int64).reshape(-1)
        if idx.shape != (B,) or (idx < 0).any():
            raise ValueError(f"LandmarkMetrics.update: index must be [B] = [{B}] dataset indices >= 0, got "
                             f"{tuple(idx.shape)} {idx[:5].tolist()}")
        return idx

    def _subset_flags(self, flags: torch.Tensor, B: int, device: torch.device) -> torch.Tensor:
        if self.subset_names is None or flags.shape != (B, len(self.subset_names)):
            raise ValueError(f"LandmarkMetrics.update: subset flags must be [B, len(subset_names)] = "
                             f"[{B}, {None if self.subset_names is None else len(self.subset_names)}] (one column "
                             f"per name in metrics.subset_names), got {tuple(flags.shape)}")
        return flags.to(device=device, dtype=torch.uint8)

    def _subset_ids(self, subset: Any, B: int, device: torch.device) -> torch.Tensor:
        if subset is None:
            return torch.full((B,), -1, dtype=torch.int64, device=device)
        if torch.is_tensor(subset) or isinstance(subset, np.ndarray):
            ids = torch.as_tensor(subset).to(device=device, dtype=torch.int64).reshape(-1)
        else:
            items = list(subset)
            if any(isinstance(s, str) for s in items):
                if self.subset_names is None:
                    raise ValueError("LandmarkMetrics.update: subsets given by name need metrics.subset_names "
                                     "(the list of names, so every rank maps them to the same ids)")
                unknown = sorted({s for s in items if s not in self.subset_names})
                if unknown:
                    raise ValueError(f"LandmarkMetrics.update: unknown subsets {unknown}; metrics.subset_names "
                                     f"is {self.subset_names}")
                items = [self.subset_names.index(s) for s in items]
            ids = torch.as_tensor(items, dtype=torch.int64, device=device).reshape(-1)
        if ids.shape != (B,) or (ids < 0).any():
            raise ValueError(f"LandmarkMetrics.update: subset must be [B] = [{B}] ids >= 0, got {ids[:5].tolist()}")
        if self.subset_names is not None and (ids >= len(self.subset_names)).any():
            raise ValueError(f"LandmarkMetrics.update: subset ids {sorted(set(ids.tolist()))} exceed "
                             f"metrics.subset_names {self.subset_names}")
        return ids

    # ---- compute ----------------------------------------------------------------------------------------
    def values(self) -> dict[str, np.ndarray | None]:
        """The concatenated (after DDP sync: all ranks') per-sample states as numpy arrays, duplicates of a
        dataset index removed: ``err_px`` [N,L], ``err`` [N,L] (normalised, NaN where invisible),
        ``visible`` [N,L], ``norm`` [N], ``diag`` [N], ``nme_face`` [N] (NaN without visible landmarks),
        ``validation`` [N,L] or None, ``subset`` [N] (-1 = none), ``index`` [N] (-1 = not given)."""
        if isinstance(self.err_px, list) and not self.err_px:
            return {}
        keys = ["err_px", "visible", "norm", "diag", "validation", "subset", "index"]
        flags = self.flags
        if (len(flags) > 0 if isinstance(flags, list) else flags.numel() > 0):  # after DDP sync: a tensor
            keys.append("flags")
        s = {k: dim_zero_cat(getattr(self, k)).cpu().numpy() for k in keys}
        if "flags" in s and len(s["flags"]) != len(s["index"]):
            raise ValueError("LandmarkMetrics: subset flags were given for some updates and not for others")
        s["visible"] = s["visible"].astype(bool)
        idx = s["index"]
        if (idx >= 0).any():
            keep = np.ones(idx.shape, dtype=bool)
            _, first = np.unique(idx[idx >= 0], return_index=True)
            keep[idx >= 0] = False
            keep[np.flatnonzero(idx >= 0)[first]] = True
            s = {k: v[keep] for k, v in s.items()}
        vis = s["visible"]
        has_val = np.isfinite(s["validation"]).all(1)
        if not has_val.any():
            s["validation"] = None
        elif not has_val.all():
            raise ValueError("LandmarkMetrics: validation was given for some updates and not for others")
        s["err"] = np.where(vis, s["err_px"] / s["norm"][:, None], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            s["nme_face"] = np.nansum(s["err"], 1) / vis.sum(1)
        s["nme_face"][~vis.any(1)] = np.nan
        return s

    def compute(self) -> dict[str, float]:
        s = self.values()
        if not s:
            return {"num_faces": 0.0}
        kw = dict(thresholds=self.thresholds, accuracy_thresholds=self.accuracy_thresholds,
                  discard=self.discard, seed=self.seed)
        keys = np.where(s["index"] >= 0, s["index"], 2**40 + np.arange(len(s["index"])))
        res = summarize(s["err_px"], s["visible"], s["norm"], s["diag"], s["validation"], keys, **kw)
        for sid in np.unique(s["subset"][s["subset"] >= 0]):
            m = s["subset"] == sid
            name = self.subset_names[sid] if self.subset_names is not None else str(int(sid))
            sub = summarize(s["err_px"][m], s["visible"][m], s["norm"][m], s["diag"][m],
                            None if s["validation"] is None else s["validation"][m], keys[m], **kw)
            res.update({f"{k}/{name}": v for k, v in sub.items()})
        for col, name in enumerate(self.subset_names or []) if "flags" in s else ():
            m = s["flags"][:, col].astype(bool)
            if m.any():
                sub = summarize(s["err_px"][m], s["visible"][m], s["norm"][m], s["diag"][m],
                                None if s["validation"] is None else s["validation"][m], keys[m], **kw)
                res.update({f"{k}/{name}": v for k, v in sub.items()})
        return res

    def plot_ced(self, **kwargs: Any):  # noqa: ANN201 - matplotlib Figure
        """CED figure of the accumulated faces (see :func:`ced_figure`)."""
        return ced_figure({"all": self.values()["nme_face"]}, **kwargs)

    def plot_validation(self, **kwargs: Any):  # noqa: ANN201 - matplotlib Figure
        """Sorted error vs validation signal (paper Fig. 4) of the accumulated landmarks."""
        v = self.values()
        if v.get("validation") is None:
            raise ValueError("LandmarkMetrics.plot_validation: no validation signal was given to update()")
        return validation_figure(v["err_px"], v["validation"], v["visible"], **kwargs)


def _box(target: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Width, height and diagonal of the bounding box of the visible points (0 without visible points)."""
    inf = torch.tensor(math.inf, dtype=target.dtype, device=target.device)
    lo = torch.where(vis[..., None], target, inf).amin(1)
    hi = torch.where(vis[..., None], target, -inf).amax(1)
    wh = torch.where(vis.any(1)[:, None], hi - lo, torch.zeros_like(hi))
    w, h = wh[:, 0], wh[:, 1]
    return w, h, torch.sqrt(w * w + h * h)


# ---- figures (matplotlib imported on first use, no pyplot state, no Lightning): each function returns a
# ``matplotlib.figure.Figure`` drawn on an Agg canvas, ready for ``fig.savefig`` or a logger.
# * ced_figure -- cumulative error distribution curves (fraction of faces with NME <= x).
# * validation_figure -- seed 002, Fig. 4: per-landmark normalised error (red) and normalised validation
#   signal (green), sorted ascending by the error; both min-max scaled to [0, 1].
# * sample_figure -- one image with its predicted landmarks coloured by their validation signal.

def _figure(figsize: tuple[float, float]):  # noqa: ANN202
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def ced_figure(curves: Mapping[str, Any] | Any, max_error: float = 0.10, title: str | None = None):  # noqa: ANN201
    """CED curves: ``curves`` maps a label to per-face NMEs (NaNs ignored), or is one array; the legend
    shows each curve's AUC@max_error."""
    if not isinstance(curves, Mapping):
        curves = {"": curves}
    fig = _figure((5.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for label, e in curves.items():
        e = np.asarray(e, dtype=np.float64).reshape(-1)
        e = e[np.isfinite(e)]
        x, y = ced_curve(e, max_error)
        ax.plot(x, y, label=f"{label} (AUC@{max_error:.2f} = {ced_auc(e, max_error):.3f})".strip())
    ax.set_xlim(0, max_error)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME")
    ax.set_ylabel("fraction of faces")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "Cumulative error distribution")
    fig.tight_layout()
    return fig


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def validation_figure(err: Any, validation: Any, visible: Any | None = None, title: str | None = None):  # noqa: ANN201
    """Paper Fig. 4: the errors of all visible landmarks sorted ascending (red) and their validation
    signals in the same order (green), each min-max scaled to [0, 1]."""
    err = np.asarray(err, dtype=np.float64)
    val = np.asarray(validation, dtype=np.float64)
    vis = np.ones(err.shape, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    e, v = err[vis], val[vis]
    order = np.argsort(e, kind="stable")
    fig = _figure((6.0, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(e.size)
    if e.size:
        ax.plot(x, _minmax(v[order]), ".", color="tab:green", markersize=1.5, alpha=0.5, label="validation signal")
        ax.plot(x, _minmax(e[order]), "-", color="tab:red", linewidth=1.5, label="error")
    ax.set_xlabel("landmarks, sorted by error")
    ax.set_ylabel("normalised value")
    ax.legend(loc="upper left")
    ax.set_title(title or "Error vs validation signal")
    fig.tight_layout()
    return fig


def sample_figure(image: Any, pred: Any, validation: Any | None = None, target: Any | None = None,
                  title: str | None = None):  # noqa: ANN201
    """``image`` [C,H,W] or [H,W] (tensor or array), ``pred`` [L,2] pixels; points coloured by their
    ``validation`` signal (colour bar) when given, ground truth ``target`` as white crosses."""
    img = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float64)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img[:3], 0, -1)
    img = _minmax(img) if img.size else img
    pred = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred, dtype=np.float64)
    fig = _figure((4.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    if target is not None:
        t = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target, dtype=np.float64)
        ax.scatter(t[:, 0], t[:, 1], marker="x", s=10, c="white", linewidths=0.8)
    if validation is None:
        ax.scatter(pred[:, 0], pred[:, 1], s=10, c="tab:red")
    else:
        v = np.asarray(validation.detach().cpu() if hasattr(validation, "detach") else validation, dtype=np.float64)
        sc = ax.scatter(pred[:, 0], pred[:, 1], s=12, c=v, cmap="RdYlGn_r")
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.04, label="validation signal")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
