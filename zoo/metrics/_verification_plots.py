"""Figures for verification results: ROC curve and genuine/impostor score histograms.

Built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot global state), so they are safe in
training processes; callers ``fig.savefig(path)`` or hand them to a logger.
"""
from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float | None = None, eer: float | None = None,
               label: str = "model") -> Figure:
    """ROC curve (TAR against FAR, FAR on a log axis from 1e-4) with the EER line."""
    fig = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    text = label + (f" (AUC {auc:.4f})" if auc is not None else "") + (f", EER {100 * eer:.2f}%" if eer is not None else "")
    ax.plot(np.maximum(fpr, 1e-4), tpr, lw=1.5, label=text)
    ax.plot([1e-4, 1], [1, 0], ls=":", c="gray", lw=0.8, label="FAR = FRR")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def score_histogram_figure(scores: np.ndarray, same: np.ndarray, threshold: float | None = None,
                           bins: int = 50) -> Figure:
    """Overlaid histograms (densities) of genuine and impostor cosine similarities, with the threshold."""
    scores, same = np.asarray(scores, dtype=float), np.asarray(same, dtype=bool)
    fig = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    edges = np.linspace(min(scores.min(), -1.0), max(scores.max(), 1.0), bins + 1)
    ax.hist(scores[same], bins=edges, density=True, alpha=0.6, label=f"genuine ({int(same.sum())})")
    ax.hist(scores[~same], bins=edges, density=True, alpha=0.6, label=f"impostor ({int((~same).sum())})")
    if threshold is not None:
        ax.axvline(threshold, c="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
