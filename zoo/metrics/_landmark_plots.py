"""Landmark metric figures (matplotlib, no pyplot state, no Lightning): every function returns a
``matplotlib.figure.Figure`` drawn on an Agg canvas, ready for ``fig.savefig`` or a logger.

* :func:`ced_figure` -- cumulative error distribution curves (fraction of faces with NME <= x).
* :func:`validation_figure` -- seed 002, Fig. 4: per-landmark normalised error (red) and normalised
  validation signal (green), sorted ascending by the error; both min-max scaled to [0, 1].
* :func:`sample_figure` -- one image with its predicted landmarks coloured by their validation signal.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from zoo.metrics.landmarks import ced_auc, ced_curve


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
