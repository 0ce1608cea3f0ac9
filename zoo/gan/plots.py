"""Pictures for a person (pure: numpy images and matplotlib figures; the caller logs or writes them).

- :func:`verdict_grid`: one row per face: the original, then its edits, each edit framed green (kept by the
  landmark-disagreement filter) or red (rejected), with the score as a bar under it when given.
- :func:`direction_sweep`: one row per attribute, columns α from −3 to 3 along its direction.
- :func:`to_figure`: wrap either image in a matplotlib figure with row/column labels.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from zoo.checks import check_int, invalid
from zoo.gan.detectors import to_uint8

__all__ = ["verdict_grid", "direction_sweep", "image_grid", "to_figure", "KEPT", "REJECTED"]

KEPT, REJECTED, NEUTRAL = (40, 200, 60), (220, 40, 40), (255, 255, 255)


def _frame(img: np.ndarray, colour: tuple[int, int, int], border: int) -> np.ndarray:
    h, w = img.shape[:2]
    out = np.empty((h + 2 * border, w + 2 * border, 3), np.uint8)
    out[:] = colour
    out[border:border + h, border:border + w] = img
    return out


def image_grid(cells: Sequence[Sequence[np.ndarray]], pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile rows of equally sized uint8 [h, w, 3] images into one uint8 image."""
    rows = [list(r) for r in cells]
    if not rows or not rows[0]:
        raise invalid("cells", "empty", "no images", "at least one row with one image")
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), background, np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y:y + h, x:x + w] = im
    return out


def verdict_grid(originals: Any, edits: Any, keep: Any, scale: int = 2, border: int = 3) -> np.ndarray:
    """uint8 [H, W, 3]: row i = original i (white frame), then edits[i, j] framed green (keep) / red (reject).

    ``originals`` [N, 3, R, R] in [-1, 1] (or uint8 [N, R, R, 3]); ``edits`` [N, E, 3, R, R] (or [N, 3, R, R]
    for one edit per face); ``keep`` bool [N, E] (or [N])."""
    import cv2

    scale = check_int("scale", scale, low=1)
    o = to_uint8(originals)
    e = edits if not hasattr(edits, "detach") else edits.detach().cpu()
    e = np.asarray(e)
    if e.ndim == 4:
        e = e[:, None]
    keep = np.asarray(keep, bool).reshape(len(o), -1)
    if e.shape[0] != len(o) or keep.shape[1] != e.shape[1]:
        raise invalid("edits", f"array {e.shape}", f"does not match {len(o)} originals / keep {keep.shape}",
                      "[N, E, 3, R, R] edits with keep [N, E]")

    def big(im):
        return cv2.resize(im, (im.shape[1] * scale, im.shape[0] * scale), interpolation=cv2.INTER_NEAREST)

    rows = []
    for i in range(len(o)):
        ims = to_uint8(e[i]) if e.dtype != np.uint8 else e[i]
        rows.append([_frame(big(o[i]), NEUTRAL, border)] +
                    [_frame(big(ims[j]), KEPT if keep[i, j] else REJECTED, border) for j in range(e.shape[1])])
    return image_grid(rows)


@torch.no_grad()
def direction_sweep(G: Any, directions: Any, latent: Any, names: Sequence[str] | None = None,
                    alphas: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3), condition: Sequence[str] = (),
                    scale: int = 2) -> np.ndarray:
    """uint8 [H, W, 3]: one row per attribute (``directions.conditional(name, condition)``), one column per α,
    all from the same latent (a :class:`zoo.gan.Latent` or z of one face; the first is used)."""
    import cv2

    from zoo.gan.directions import edit
    from zoo.gan.inversion import Latent

    if not isinstance(latent, Latent):
        latent = Latent(torch.as_tensor(latent, dtype=torch.float32).reshape(-1, G.latent_dim))
    lat = latent[:1]
    names = list(directions.names if names is None else names)
    rows = []
    for name in names:
        d = directions.conditional(name, [c for c in condition if c != name])
        many = Latent(lat.z.expand(len(alphas), -1), None if lat.residual is None else lat.residual.expand(len(alphas), -1, -1, -1))
        ims = to_uint8(edit(G, many, d, list(alphas)))
        rows.append([cv2.resize(im, (im.shape[1] * scale, im.shape[0] * scale), interpolation=cv2.INTER_NEAREST) for im in ims])
    return image_grid(rows)


def to_figure(image: np.ndarray, row_labels: Sequence[str] = (), col_labels: Sequence[str] = (), title: str = "",
              dpi: int = 100):
    """A matplotlib Figure showing ``image`` with optional row / column labels (rows and columns evenly spaced)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=(max(2.0, w / dpi + 1.2), max(2.0, h / dpi + 0.6)), dpi=dpi)
    ax.imshow(image)
    ax.set_xticks([(j + 0.5) * w / len(col_labels) for j in range(len(col_labels))], list(col_labels)) if col_labels else ax.set_xticks([])
    ax.set_yticks([(i + 0.5) * h / len(row_labels) for i in range(len(row_labels))], list(row_labels)) if row_labels else ax.set_yticks([])
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
