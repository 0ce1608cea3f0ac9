"""Face verification metrics: LFW 10-fold accuracy, ROC/AUC, TAR@FAR, EER, and IJB-A template similarity.

Pure torch/numpy (no Lightning). Scores are cosine similarities s = <e_i, e_j> / (|e_i| |e_j|); a pair is
predicted "same" when s >= threshold.

* **10-fold accuracy** (LFW protocol, Huang et al. 2007): for each fold k the threshold maximising accuracy
  on the other nine folds is applied to fold k; reported are the mean and the standard deviation (ddof=0, as
  the insightface / OpenFace LFW scripts) of the ten fold accuracies. Candidate thresholds are the midpoints
  between consecutive distinct scores plus one below the minimum and one above the maximum; among equally
  accurate thresholds the lowest is taken.
* **ROC**: for every distinct score t (descending) TPR(t) = #{genuine: s >= t} / #genuine and
  FPR(t) = #{impostor: s >= t} / #impostor, starting from (0, 0) — the points of
  ``sklearn.metrics.roc_curve(drop_intermediate=False)``. **AUC** is the trapezoidal area under it.
* **TAR@FAR=f** = max{TPR(t) : FPR(t) <= f} (no interpolation; meaningful when #impostor >= 1/f).
* **EER**: the false-accept rate where FPR = FNR = 1 - TPR on the piecewise-linear ROC (intersection with
  the line TPR = 1 - FPR), as in seed 003 (Vine).
* **threshold**: the accuracy-maximising threshold over all pairs (what to deploy; the fold thresholds are
  only for the unbiased accuracy estimate).
* **Flip TTA**: e = normalise(e_plain + e_flipped) (the embeddings of the image and its horizontal mirror).
* **Template similarity** (IJB-A; Masi et al. 2016, used by seed 001): see :func:`template_similarity`.

:class:`VerificationMetrics` is a torchmetrics ``Metric`` whose states (embeddings, identities, dataset
indices) are concatenated across DDP ranks; samples seen twice (DistributedSampler padding) are counted once.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from zoo.metrics.pairs import assign_folds, generate_pairs

# ------------------------------------------------------------------------------------------------ pure functions


def cosine_scores(embeddings: torch.Tensor, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine similarity of rows ``i`` and ``j`` of ``embeddings`` [N, D] -> float64 numpy [P]."""
    e = F.normalize(embeddings.detach().double(), dim=1)
    ii, jj = torch.as_tensor(i, dtype=torch.long), torch.as_tensor(j, dtype=torch.long)
    return (e[ii] * e[jj]).sum(1).cpu().numpy()


def _check_scores(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(same).astype(bool).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and same ({y.size}) must have the same length")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN/inf (non-finite embeddings?)")
    if y.all() or not y.any():
        raise ValueError(f"verification needs both genuine and impostor pairs, got {int(y.sum())} genuine and "
                         f"{int((~y).sum())} impostor")
    return s, y


def roc(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, descending, starting from (0, 0) at threshold +inf."""
    s, y = _check_scores(scores, same)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last position of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Trapezoidal area under the ROC curve."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, far: float) -> float:
    """max TPR over ROC points with FPR <= far."""
    ok = fpr <= far + 1e-12
    return float(tpr[ok].max())


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray | None = None) -> tuple[float, float]:
    """(EER, threshold): where FPR = 1 - TPR on the linearly interpolated ROC; the threshold is that of the first
    ROC point at or past the crossing."""
    d = (1 - tpr) - fpr  # +1 at (0,0), -1 at (1,1), non-increasing
    k = int(np.argmax(d <= 0))
    if d[k] == 0 or k == 0:
        eer = fpr[k]
    else:
        a = d[k - 1] / (d[k - 1] - d[k])
        eer = fpr[k - 1] + a * (fpr[k] - fpr[k - 1])
    thr = float(thresholds[k]) if thresholds is not None else float("nan")
    return float(eer), thr


def best_threshold(scores: Any, same: Any) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``score >= threshold``; lowest threshold among ties."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    u = np.unique(s)  # ascending
    cand = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2, u[-1] + 1.0]
    # predicted same for s >= t: count genuine >= t and impostor < t via sorted searches
    gs, im = np.sort(s[y]), np.sort(s[~y])
    tp = gs.size - np.searchsorted(gs, cand, side="left")
    tn = np.searchsorted(im, cand, side="left")
    acc = (tp + tn) / s.size
    k = int(np.argmax(acc))
    return float(cand[k]), float(acc[k])


def kfold_accuracy(scores: Any, same: Any, folds: Any) -> tuple[float, float, np.ndarray, np.ndarray]:
    """LFW protocol: (mean, std, per-fold accuracies, per-fold thresholds) with each fold's threshold fitted on
    the other folds."""
    s, y = _check_scores(scores, same)
    f = np.asarray(folds, dtype=np.int64).reshape(-1)
    if f.shape != s.shape:
        raise ValueError(f"folds ({f.size}) and scores ({s.size}) must have the same length")
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError(f"k-fold accuracy needs at least 2 folds, got {ids.size}")
    accs, thrs = [], []
    for k in ids:
        test = f == k
        t, _ = best_threshold(s[~test], y[~test])
        accs.append(float(((s[test] >= t) == y[test]).mean()))
        thrs.append(t)
    accs_a = np.asarray(accs)
    return float(accs_a.mean()), float(accs_a.std()), accs_a, np.asarray(thrs)


def verification_report(scores: Any, same: Any, folds: Any,
                        far_targets: Sequence[float] = (0.1, 0.01, 0.001)) -> dict[str, float]:
    """All scalar metrics of a scored pair set (see the module docstring for definitions)."""
    s, y = _check_scores(scores, same)
    fpr, tpr, thr = roc(s, y)
    acc, acc_std, _, _ = kfold_accuracy(s, y, folds)
    eer, eer_thr = equal_error_rate(fpr, tpr, thr)
    best_t, best_acc = best_threshold(s, y)
    out = {"accuracy": acc, "accuracy_std": acc_std, "auc": roc_auc(fpr, tpr), "eer": eer,
           "eer_threshold": eer_thr, "threshold": best_t, "best_accuracy": best_acc}
    for far in far_targets:
        out[f"tar@far={far:g}"] = tar_at_far(fpr, tpr, far)
    out["num_pairs"] = float(s.size)
    return out


def flip_fuse(embeddings: torch.Tensor, embeddings_flipped: torch.Tensor) -> torch.Tensor:
    """Flip test-time augmentation: normalise(e + e_flipped)."""
    if embeddings.shape != embeddings_flipped.shape:
        raise ValueError(f"embeddings {tuple(embeddings.shape)} and embeddings_flipped "
                         f"{tuple(embeddings_flipped.shape)} must have the same shape")
    return F.normalize(embeddings + embeddings_flipped, dim=-1)


def template_similarity(emb_a: torch.Tensor, emb_b: torch.Tensor,
                        beta: float | Sequence[float] = tuple(range(21))) -> torch.Tensor:
    """Softmax-averaged similarity of two templates (image sets) [Na, D] and [Nb, D] (Masi et al. 2016, IJB-A;
    seed 001).

    With s_ij the cosine similarity of every cross pair, s_beta(A, B) = sum_ij w_ij s_ij with
    w = softmax(beta * s) over all Na*Nb pairs: beta = 0 is the mean similarity, beta -> inf the maximum.
    A sequence of betas returns the mean of s_beta over them (Masi et al. sum beta = 0..20, the default;
    the mean keeps the score in [-1, 1]). Returns a 0-d tensor.
    """
    if emb_a.dim() != 2 or emb_b.dim() != 2 or emb_a.shape[1] != emb_b.shape[1] or not len(emb_a) or not len(emb_b):
        raise ValueError(f"templates must be non-empty [N, D] with equal D, got {tuple(emb_a.shape)} and "
                         f"{tuple(emb_b.shape)}")
    s = (F.normalize(emb_a, dim=1) @ F.normalize(emb_b, dim=1).T).reshape(-1)
    betas = torch.as_tensor([beta] if np.isscalar(beta) else list(beta), dtype=s.dtype, device=s.device)
    if betas.numel() == 0:
        raise ValueError("beta must be a number or a non-empty sequence")
    w = torch.softmax(betas[:, None] * s[None, :], dim=1)  # [nb, P]
    return (w * s[None, :]).sum(1).mean()


# ------------------------------------------------------------------------------------------------ torchmetrics


class VerificationMetrics(Metric):
    """Verification metrics over a pair set of one split (LFW protocol by default), DDP-correct.

    Args:
        pairs: ``[(i, j, same)]`` or ``[(i, j, same, fold)]`` with i, j dataset indices (the samples' ``index``)
            of the split; None generates ``num_pairs`` balanced pairs from the identities seen (seeded, by
            :func:`zoo.metrics.pairs.generate_pairs`). 3-tuples get folds by :func:`zoo.metrics.pairs.assign_folds`.
        num_pairs, seed: for generated pairs.
        folds: number of cross-validation folds (10 = LFW).
        far_targets: FARs for TAR@FAR.
        flip_tta: expect ``embeddings_flipped`` in :meth:`update` and fuse them (sum, then L2-normalise).

    ``compute()`` returns a dict of 0-d tensors: accuracy, accuracy_std, auc, eer, eer_threshold, threshold,
    best_accuracy, tar@far=<f> for each target, num_pairs. After it, :attr:`last_scores` holds the scored pairs
    and :meth:`figures` draws the ROC and score histograms.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, pairs: Sequence[Sequence[Any]] | None = None, num_pairs: int = 6000, folds: int = 10,
                 far_targets: Sequence[float] = (0.1, 0.01, 0.001), seed: int = 0, flip_tta: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_pairs, self.folds, self.seed, self.flip_tta = num_pairs, folds, seed, flip_tta
        self.far_targets = tuple(float(f) for f in far_targets)
        for f in self.far_targets:
            if not 0 < f <= 1:
                raise ValueError(f"far_targets must lie in (0, 1], got {f}")
        self.pairs = None if pairs is None else self._parse_pairs(pairs, folds)
        self.last_scores: dict[str, np.ndarray] | None = None
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("identities", default=[], dist_reduce_fx="cat")
        self.add_state("indices", default=[], dist_reduce_fx="cat")

    @staticmethod
    def _parse_pairs(pairs: Sequence[Sequence[Any]], folds: int) -> tuple[np.ndarray, ...]:
        rows = [tuple(p) for p in pairs]
        if not rows:
            raise ValueError("pairs is empty; pass None to generate pairs")
        widths = {len(r) for r in rows}
        if widths not in ({3}, {4}):
            raise ValueError(f"pairs must all be (i, j, same) or all (i, j, same, fold), got tuple lengths {widths}")
        arr = np.asarray([[int(r[0]), int(r[1]), int(bool(r[2]))] + ([int(r[3])] if len(r) == 4 else [])
                          for r in rows], dtype=np.int64)
        same = arr[:, 2].astype(bool)
        fold = arr[:, 3] if arr.shape[1] == 4 else assign_folds(same, folds)
        return arr[:, 0], arr[:, 1], same, fold

    def update(self, embeddings: torch.Tensor, identities: torch.Tensor, index: torch.Tensor,
               embeddings_flipped: torch.Tensor | None = None) -> None:
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be [B, D], got {tuple(embeddings.shape)}")
        b = embeddings.shape[0]
        if identities.shape != (b,) or index.shape != (b,):
            raise ValueError(f"identities {tuple(identities.shape)} and index {tuple(index.shape)} must be [B]={b}")
        if self.flip_tta:
            if embeddings_flipped is None:
                raise ValueError("VerificationMetrics(flip_tta=True) needs embeddings_flipped in update()")
            embeddings = flip_fuse(embeddings, embeddings_flipped)
        elif embeddings_flipped is not None:
            raise ValueError("embeddings_flipped given but flip_tta=False; construct VerificationMetrics(flip_tta=True)")
        self.embeddings.append(embeddings.detach().float())
        self.identities.append(identities.detach().long())
        self.indices.append(index.detach().long())

    def _gathered(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        if isinstance(self.embeddings, list) and not self.embeddings:
            raise ValueError("VerificationMetrics.compute() called before any update()")
        emb = dim_zero_cat(self.embeddings).cpu()
        ids = dim_zero_cat(self.identities).cpu().numpy()
        idx = dim_zero_cat(self.indices).cpu().numpy()
        # one row per dataset index, sorted by index (DDP gathers may repeat padded samples, in any order)
        uniq, first = np.unique(idx, return_index=True)
        return emb[torch.as_tensor(first)], ids[first], uniq

    def compute(self) -> dict[str, torch.Tensor]:
        emb, ids, idx = self._gathered()
        if self.pairs is None:
            gen = generate_pairs(ids, self.num_pairs, self.seed, self.folds)
            pi = np.asarray([p[0] for p in gen]); pj = np.asarray([p[1] for p in gen])
            same = np.asarray([p[2] for p in gen], dtype=bool)
            fold = assign_folds(same, self.folds)
        else:
            i_idx, j_idx, same, fold = self.pairs
            pos_i, pos_j = np.searchsorted(idx, i_idx), np.searchsorted(idx, j_idx)
            for pos, want in ((pos_i, i_idx), (pos_j, j_idx)):
                bad = (pos >= idx.size) | (idx[np.minimum(pos, idx.size - 1)] != want)
                if bad.any():
                    k = int(np.flatnonzero(bad)[0])
                    raise ValueError(f"pair {k} ({int(i_idx[k])}, {int(j_idx[k])}, {bool(same[k])}) names dataset "
                                     f"index {int(want[k])} that no update() provided ({int(bad.sum())} such pairs); "
                                     f"evaluate every sample of the split the pairs index")
            pi, pj = pos_i, pos_j
            label_same = ids[pi] == ids[pj]
            if (label_same != same).any():
                k = int(np.flatnonzero(label_same != same)[0])
                raise ValueError(f"pair {k} is marked same={bool(same[k])} but its samples have identities "
                                 f"{int(ids[pi[k]])} and {int(ids[pj[k]])}: the pair list does not match the split")
        scores = cosine_scores(emb, pi, pj)
        self.last_scores = {"scores": scores, "same": same, "fold": fold,
                            "i": idx[pi] if self.pairs is None else self.pairs[0],
                            "j": idx[pj] if self.pairs is None else self.pairs[1]}
        report = verification_report(scores, same, fold, self.far_targets)
        self.last_report = report
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in report.items()}

    def figures(self) -> dict[str, Any]:
        """{"roc": Figure, "scores": Figure} of the last compute() (matplotlib, no pyplot state)."""
        if self.last_scores is None:
            raise ValueError("call compute() before figures()")
        from zoo.metrics._verification_plots import roc_figure, score_histogram_figure

        s, y = self.last_scores["scores"], self.last_scores["same"]
        fpr, tpr, _ = roc(s, y)
        rep = self.last_report
        return {"roc": roc_figure(fpr, tpr, auc=rep["auc"], eer=rep["eer"]),
                "scores": score_histogram_figure(s, y, threshold=rep["threshold"])}
