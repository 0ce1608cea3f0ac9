"""Tiny train.py runs (Hydra compose + zoo.run.train) whose checkpoints the inference/evaluation tests read, and
face-crop folders written from the synthetic generator (no ../shared/data needed)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from hydra import compose, initialize_config_dir

from conftest import REPO

#: 32 px synthetic identities, P×K = 2×4, one epoch (seconds on 2 cores)
TINY_IDENTITIES = ["data.num_identities=6", "data.images_per_identity=4", "data.val_identities=4",
                   "data.val_images_per_identity=3", "data.test_identities=4", "data.test_images_per_identity=3",
                   "data.image_size=32", "data.num_pairs=20", "data.pair_folds=2", "model.val_folds=2",
                   "data.batch_size=8", "sampler.k=4", "data.num_workers=0"]
QUIET = ["trainer.max_epochs=1", "logger=csv", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "test=false"]


def train_tiny(out: Path, overrides: list[str]) -> str:
    """Train with ``overrides`` into ``out``; return the best checkpoint's path."""
    from zoo.run import train

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={out}"] + overrides + QUIET)
    res = train(cfg)
    assert res["best_model_path"], "the tiny run saved no checkpoint"
    return res["best_model_path"]


def tiny_facenet(out: Path) -> str:
    return train_tiny(out, ["model=facenet_triplet", "model.embedding_dim=16"] + TINY_IDENTITIES)


def tiny_landmark(out: Path) -> str:
    return train_tiny(out, ["data.num_identities=8", "data.images_per_identity=1", "data.val_identities=4",
                            "data.test_identities=0", "data.image_size=32", "data.batch_size=4",
                            "data.num_workers=0"])


def write_face_folder(root: Path, identities: int = 3, images: int = 3, size: int = 40, seed: int = 7,
                      gray: bool = False) -> dict[str, list[Path]]:
    """``root/<identity>/<identity>_<n:04d>.png`` (LFW naming, n from 1): RGB uint8 synthetic faces, each identity a
    3DMM identity of its own seen in ``images`` poses/lights. Returns {identity: [files]}."""
    from zoo.synth.generator import FaceGenerator, GeneratorConfig
    from zoo.synth.loaders import load_model

    gen = FaceGenerator(load_model("builtin"), GeneratorConfig(image_size=size, grayscale=gray))
    out: dict[str, list[Path]] = {}
    for i in range(identities):
        name = f"person_{i}"
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(images):
            img = (gen(seed, i, k, 3)[0]["image"] * 255).round().astype(np.uint8)
            f = root / name / f"{name}_{k + 1:04d}.png"
            cv2.imwrite(str(f), img[..., 0] if gray else img[..., ::-1])  # OpenCV writes BGR
            out.setdefault(name, []).append(f)
    return out
