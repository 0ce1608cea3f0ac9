"""3DMM-synthetic faces rendered on the fly: the embedded default data of ``python train.py`` (nothing to download).

Kortylewski et al. (seeds 000/001): N identities × K images, an identity being fixed shape + colour coefficients
of a morphable model, every image its own pose, illumination, expression and background. Sample
(seed, split, identity, k) is a pure function of those numbers (zoo.synth.generator), so every DataLoader
worker and DDP rank renders its share itself; the generator is built lazily in each worker process.

Splits use disjoint identity populations: train = stream 0, val = stream 1, test = stream 2 of the same seed
(different SeedSequence spawn keys), ``index = identity · K + k``.

Samples (zoo/datamodules/samples.py contract):
  landmarks:  image float32 [C,S,S] = (x - mean) / std with x in [0,1] (default mean 0, std 1: x itself),
              landmarks [68,2] 0-based pixel-centre, visible [68] (z-buffer test; points off the image or not
              defined by the model are False), norm (``data.norm``: "inter_ocular" = ‖p36 - p45‖ in the image,
              the 300-W protocol, default; it shrinks towards 0 in profile views, so full-pose NME is dominated
              by them: "inter_ocular_3d" = the frontal-equivalent eye distance, pose-independent; "box" =
              √(w·h) of the landmark box), index; plus identity.
  identities: image, identity (0..N-1 within the split), index.
  both, for per-pose metrics and bias studies: yaw, pitch, roll (degrees, float32), light [27] (SH, [9,3]
  row-major), expression [Ke].
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.checks import check_choice, check_int
from zoo.datamodules.base import FaceDataModule
from zoo.datamodules.eval_cache import MODES as CACHE_MODES, cached_split, file_fingerprint, source_fingerprint, versions
from zoo.datamodules.pairs import VerificationPairs, generated_pairs
from zoo.datamodules.samples import TASKS, DataInfo, normaliser
from zoo.schemes import get_scheme
from zoo.synth.generator import FaceGenerator, GeneratorConfig
from zoo.synth.loaders import load_model

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
MODELS = ("builtin", "sfm", "bfm2017")
#: data.norm -> generator output: the 300-W image inter-ocular distance, its pose-independent 3D version, √(w·h) box
NORMS = {"inter_ocular": "norm", "inter_ocular_3d": "norm_3d", "box": "norm_box"}


def split_sizes(task: str = "landmarks", num_identities: int = 400, images_per_identity: int = 5,
                val_identities: int = 40, val_images_per_identity: int | None = None, test_identities: int = 40,
                test_images_per_identity: int | None = None) -> dict[str, tuple[int, int]]:
    """{split: (identities, images per identity)} of the ``data.*`` size keys, validated: the one check that
    ``train.py`` (this datamodule) and ``generate.py`` share. ValueError naming ``data.<key>``; the train split
    needs >= 1 identity (>= 2 for the identity task: impostor pairs), val/test may be 0 (no split); the
    per-split image counts default to ``images_per_identity``."""
    check_int("data.num_identities", num_identities, low=2 if task == "identities" else 1)
    check_int("data.images_per_identity", images_per_identity)
    check_int("data.val_identities", val_identities, low=0)
    check_int("data.test_identities", test_identities, low=0)
    for key, value in (("val_images_per_identity", val_images_per_identity),
                       ("test_images_per_identity", test_images_per_identity)):
        if value is not None:
            check_int(f"data.{key}", value)
    return {"train": (num_identities, images_per_identity),
            "val": (val_identities, val_images_per_identity or images_per_identity),
            "test": (test_identities, test_images_per_identity or images_per_identity)}


class SyntheticFaceDataset(Dataset):
    """``num_identities`` × ``images_per_identity`` rendered faces of one split (see module docstring)."""

    def __init__(self, task: str, model: str, config: GeneratorConfig, seed: int, num_identities: int,
                 images_per_identity: int, stream: int = 0, model_path: str | None = None,
                 landmark_mapping: str | None = None, contour: str | None = None,
                 mean: Sequence[float] | float = 0.0, std: Sequence[float] | float = 1.0,
                 norm: str = "inter_ocular") -> None:
        check_choice("data.task", task, TASKS)
        check_choice("data.norm", norm, tuple(NORMS))
        self.norm_key = NORMS[norm]
        self.task, self.model_name, self.cfg, self.seed, self.stream = task, model, config, int(seed), int(stream)
        self.num_identities, self.images_per_identity = int(num_identities), int(images_per_identity)
        self.model_args = (model, model_path, landmark_mapping, contour)
        self.mean, self.std = normaliser(mean, std, 1 if config.grayscale else 3)
        self.identities = np.repeat(np.arange(self.num_identities, dtype=np.int64), self.images_per_identity)
        self._gen: FaceGenerator | None = None

    @property
    def generator(self) -> FaceGenerator:
        if self._gen is None:  # built in the process that renders (each DataLoader worker)
            self._gen = FaceGenerator(load_model(*self.model_args), self.cfg)
        return self._gen

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_gen"] = None
        return state

    def __len__(self) -> int:
        return self.num_identities * self.images_per_identity

    def params(self, index: int) -> dict[str, Any]:
        identity, k = divmod(int(index), self.images_per_identity)
        return self.generator.sample_params(self.seed, identity, k, self.stream)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic samples")
        p = self.params(index)
        out = self.generator.render(p, landmarks=self.task == "landmarks")  # the same image either way
        image = (torch.from_numpy(out["image"]).permute(2, 0, 1) - self.mean) / self.std
        sample = {"image": image.contiguous(), "index": torch.tensor(int(index), dtype=torch.int64),
                  "identity": torch.tensor(p["identity"], dtype=torch.int64),
                  "yaw": torch.tensor(p["yaw"], dtype=torch.float32),
                  "pitch": torch.tensor(p["pitch"], dtype=torch.float32),
                  "roll": torch.tensor(p["roll"], dtype=torch.float32),
                  "light": torch.from_numpy(np.asarray(p["light"], np.float32)),
                  "expression": torch.from_numpy(np.asarray(p["expression"], np.float32))}
        if self.task == "landmarks":
            sample["landmarks"] = torch.from_numpy(out["landmarks"])
            sample["visible"] = torch.from_numpy(out["visible"])
            sample["norm"] = torch.tensor(out[self.norm_key], dtype=torch.float32)
        return sample


class Synthetic3DMMDataModule(VerificationPairs, FaceDataModule):
    """On-the-fly 3DMM-synthetic faces for the landmark or the identity task (module docstring).

    model: "builtin" (default, generated by code) | "sfm" (model_path = the Surrey Face Model folder) |
    "bfm2017" (model_path = the .h5; landmark_mapping / contour files optional, see zoo.synth.bfm).
    Sizes: num_identities × images_per_identity training images; val/test: their own identities.
    Rendering: image_size (64-224 usual), grayscale, yaw/pitch/roll [min, max] degrees (uniform), light_prior
    ("gaussian" | "empirical" with light_path), background ("procedural" | "folder" with background_path |
    "uniform"), framing/face_scale, landmark_mode ("contour" | "fixed"), supersample, backend ("numba" |
    "moderngl", GL context per worker), and the coefficient scales. mean/std normalise the image; norm picks
    the normalising distance (module docstring).
    ``pairs(split)`` gives balanced verification pairs for the identity task (as zoo.datamodules.identity does).
    eval_cache: the val/test splits are rendered once and served from memory ("memory"), and also kept on disk
    for the next run with the same configuration ("disk", default; folder ``cache_dir``, default
    ``~/.cache/zoo/synthetic``), or rendered at every evaluation ("none"); see :mod:`zoo.datamodules.eval_cache`.
    """

    def __init__(
        self,
        task: str = "landmarks",
        model: str = "builtin",
        model_path: str | None = None,
        landmark_mapping: str | None = None,
        contour: str | None = None,
        num_identities: int = 400,
        images_per_identity: int = 5,
        val_identities: int = 40,
        val_images_per_identity: int | None = None,
        test_identities: int = 40,
        test_images_per_identity: int | None = None,
        image_size: int = 96,
        grayscale: bool = True,
        scheme: str = "ibug68",
        landmark_mode: str = "contour",
        yaw: Sequence[float] = (-90.0, 90.0),
        pitch: Sequence[float] = (-30.0, 30.0),
        roll: Sequence[float] = (-15.0, 15.0),
        light_prior: str = "gaussian",
        light_path: str | None = None,
        light_scale: float = 1.0,
        shape_scale: float = 1.0,
        color_scale: float = 1.0,
        expression_scale: float = 0.7,
        background: str = "procedural",
        background_path: str | None = None,
        framing: str = "landmarks",
        face_scale: float = 0.8,
        supersample: int = 1,
        backend: str = "numba",
        mean: Sequence[float] | float = 0.0,
        std: Sequence[float] | float = 1.0,
        norm: str = "inter_ocular",
        num_pairs: int = 3000,
        pair_folds: int = 10,
        eval_cache: str = "disk",
        cache_dir: str | None = None,
        sampler: Callable[..., Any] | None = None,
        **loader: Any,
    ) -> None:
        super().__init__(sampler=sampler, **loader)
        check_choice("data.task", task, TASKS)
        check_choice("data.eval_cache", eval_cache, CACHE_MODES)
        check_choice("data.model", model, MODELS)
        check_choice("data.norm", norm, tuple(NORMS))
        self.sizes = split_sizes(task, num_identities, images_per_identity, val_identities, val_images_per_identity,
                                 test_identities, test_images_per_identity)
        self.task, self.model, self.model_path = task, model, model_path
        self.landmark_mapping, self.contour = landmark_mapping, contour
        # GeneratorConfig validates image size, ranges, modes and scales (ValueError naming the key)
        self.gen_cfg = GeneratorConfig(
            image_size=image_size, grayscale=bool(grayscale), scheme=scheme, landmark_mode=landmark_mode,
            yaw=tuple(yaw), pitch=tuple(pitch), roll=tuple(roll), light_prior=light_prior, light_path=light_path,
            light_scale=light_scale, shape_scale=shape_scale, color_scale=color_scale,
            expression_scale=expression_scale, background=background, background_path=background_path,
            framing=framing, face_scale=face_scale, supersample=supersample, backend=backend)
        self.image_size, self.grayscale, self.scheme = int(image_size), bool(grayscale), scheme
        self.mean, self.std, self.norm = mean, std, norm
        self.num_pairs, self.pair_folds = num_pairs, pair_folds
        self.eval_cache, self.cache_dir = eval_cache, cache_dir
        self._eval: dict[str, Dataset | None] = {}

    def build_datasets(self) -> dict[str, Dataset | None]:
        # fail early (in the main process) on bad model files / backgrounds / light priors
        FaceGenerator(load_model(self.model, self.model_path, self.landmark_mapping, self.contour), self.gen_cfg)
        out: dict[str, Dataset | None] = {}
        for split, stream in SPLIT_STREAMS.items():
            n, k = self.sizes[split]
            out[split] = None if n == 0 else SyntheticFaceDataset(
                self.task, self.model, self.gen_cfg, self.seed, n, k, stream, self.model_path, self.landmark_mapping,
                self.contour, self.mean, self.std, self.norm)
        return out

    def data_info(self) -> DataInfo:
        sizes = {s: len(d) for s, d in self.datasets.items() if d is not None}
        channels = 1 if self.grayscale else 3
        if self.task == "landmarks":
            sch = get_scheme(self.scheme)
            return DataInfo(task="landmarks", image_size=self.image_size, channels=channels, scheme=self.scheme,
                            num_landmarks=sch.num_landmarks, flip_permutation=list(sch.flip_permutation), sizes=sizes)
        return DataInfo(task="identities", image_size=self.image_size, channels=channels,
                        num_identities=self.sizes["train"][0], sizes=sizes)

    # ---- val/test rendered once (zoo.datamodules.eval_cache) -----------------------------------------------
    def split_description(self, split: str) -> dict[str, Any]:
        """Everything that determines the samples of ``split`` (the disk-cache key): task, model and its files,
        every generator setting and the files it names, seed, stream, sizes, normalisation, the rendering code."""
        n, k = self.sizes[split]
        gen = self.gen_cfg.to_dict()
        here = Path(__file__).resolve()
        code = sorted((here.parents[1] / "synth").glob("*.py")) + [here]
        return {"task": self.task, "model": self.model, "model_path": file_fingerprint(self.model_path),
                "landmark_mapping": file_fingerprint(self.landmark_mapping),
                "contour": file_fingerprint(self.contour), "generator": gen,
                "light_file": file_fingerprint(gen.get("light_path")),
                "background_files": file_fingerprint(gen.get("background_path")),
                "seed": self.seed, "split": split, "stream": SPLIT_STREAMS[split], "identities": n,
                "images_per_identity": k, "mean": np.asarray(self.mean, np.float64).tolist(),
                "std": np.asarray(self.std, np.float64).tolist(), "norm": self.norm,
                "code": source_fingerprint(code), "versions": versions()}

    def eval_dataset(self, split: str) -> Dataset | None:
        """The val/test split rendered once per process (``data.eval_cache``: memory | disk, the default, also
        across runs | none), so every validation epoch and every run reuse the same images."""
        self.setup(split)
        ds = self.datasets.get(split)
        if ds is None or split == "train" or self.eval_cache == "none":
            return ds
        if split not in self._eval:
            self._eval[split] = cached_split(ds, self.split_description(split), f"{self.task}-{split}",
                                             self.eval_cache, self.cache_dir, self.eval_batch_size, self.num_workers)
        return self._eval[split]

    def make_pairs(self, split: str, dataset: Dataset) -> list[tuple[int, int, bool, int]]:
        return generated_pairs(dataset, self.num_pairs, self.pair_folds, self.seed)

    def empty_split_hint(self, split: str) -> str:
        return f"data.{split}_identities is 0"
