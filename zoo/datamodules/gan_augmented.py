"""``GanAugmentedDataModule``: any zoo datamodule plus GAN-edited copies of its training faces (seed 004).

Cheng et al., "Using Augmented Face Images to Improve Facial Recognition Tasks" (../shared/seeds/004_*.txt):
each real training face is encoded into a pretrained GAN's latent space (``zoo.gan.Inverter``), moved along an
InterFaceGAN attribute direction (the unit normal of a linear SVM's hyperplane, ``zoo.gan.fit_directions``) by a
random amount, ``x' = G(w + alpha * n)`` with ``|alpha|`` in ``[alpha_min, alpha_max]`` and a random sign, and the
edit is kept only when a landmark detector finds the same landmarks on it as on the (reconstructed) original:
``score = RMSE(landmarks(x), landmarks(x')) / inter-ocular distance < threshold``
(``zoo.gan.LandmarkDisagreement``). The training set is the union of the real faces and the kept edits.

How it wraps the base (public interface only: a data config, ``setup``, ``datasets``, ``info``, loaders):

* ``base`` names a data config of ``configs/data`` (``afw_helen``, ``ytf_identities``, ``johns``...), composed
  in code from its YAML file; ``base_overrides`` changes its keys (``data.base_overrides.image_size=64``).
  The wrapper's ``sampler``/``augment``/``seed`` replace the base's; ``batch_size``/``num_workers`` default to
  the base's. val/test loaders, ``pairs()`` and DataInfo are the base's (val/test are never augmented).
* A second, "clean" copy of the base (RGB, no augmentation, values in [0, 1]) gives the real face crops that
  are aligned to the GAN's mean face (``zoo.gan.align_faces``; alignment landmarks: ``align``), inverted and
  edited. The edit (64 px) is warped back into the base crop by the inverse of the alignment and pasted over
  the real crop, so an edited sample has the framing, size, channels and normalisation of its real sample.
* Landmark samples keep their landmarks (same crop frame); with ``relabel: true`` the detector's landmarks on
  the edit (mapped back the same way) replace them, which is how geometric edits (yaw, mouth) can be used.
  Identity samples keep their identity label (the P×K sampler sees ``identities`` for real + GAN samples).
* Every training sample gets ``source`` (0 real, 1 gan; names :data:`SOURCE_NAMES`); landmark samples' ``subset``
  ids become ``<base subset>`` for real and ``gan/<base subset>`` for GAN samples (``DataInfo.subset_names``),
  so the zoo's per-subset metrics separate them. ``index`` is the position in the mixed training set (LPBB).

Edits: ``edits: fixed`` draws one edit per copy at setup (seeded, identical on every DDP rank);
``edits: per_epoch`` precomputes ``variants`` edits per copy and every load of a GAN sample draws one of them
(so an epoch sees fresh edits without running the GAN in the loader workers).

Cache: inversions (and the edit banks, one file per edit setting) are computed once and saved under
``cache_dir/<base>/``. Each file stores
its key: base config, the training files' paths + sizes + mtimes, the generator (name, weights hash) and the
inversion/edit settings. A cache whose key differs (another generator, data set or setting) is reported
(which part changed) and rebuilt, never reused. Under DDP rank 0 builds, the others wait and load.

``max_faces`` limits how many training faces are inverted (a seeded subset) when inversion is too slow.
``copies: 0`` turns the GAN off (the base alone, through the same pipeline: the control runs of the experiment).
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, get_worker_info

from zoo.checks import check_bool, check_choice, check_int, check_number, check_range_pair, check_str, invalid
from zoo.datamodules.base import FaceDataModule, dist_rank_world
from zoo.datamodules.disk_cache import cached, key_digest
from zoo.datamodules.samples import DataInfo

log = logging.getLogger(__name__)

SOURCE_NAMES = ("real", "gan")
EDIT_MODES = ("fixed", "per_epoch")
ALIGN_MODES = ("auto", "landmarks", "detector", "resize")
TASKS = ("landmarks", "identities")
DATA_CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
# base keys that do not change the training crops (left out of the cache key; the split is in the file list)
TRAINING_ONLY_KEYS = ("sampler", "augment", "batch_size", "eval_batch_size", "num_workers", "pin_memory",
                      "persistent_workers", "drop_last", "seed")


def gan_toolkit() -> Any:
    """The :mod:`zoo.gan` package (imported lazily: only a run that edits needs it)."""
    return importlib.import_module("zoo.gan")


# ---- the base config ------------------------------------------------------------------------------------------------
def available_bases() -> list[str]:
    return sorted(p.stem for p in DATA_CONFIG_DIR.glob("*.yaml") if p.stem != "gan_augmented")


def compose_base(base: str | dict, overrides: dict | None = None, seed: int = 0) -> dict[str, Any]:
    """The base data config as a plain dict: ``configs/data/<base>.yaml`` (or a given mapping) + ``overrides``.

    Root interpolations the data configs use (``${sampler}``, ``${augment}``, ``${oc.select:seed,0}``) are
    answered here: sampler/augment null (the wrapper owns them), seed = the wrapper's seed.
    """
    from omegaconf import OmegaConf  # config parsing only; no Hydra app needed

    if isinstance(base, str):
        if base == "gan_augmented" or base not in available_bases():
            raise invalid("data.base", base, "not a data config name this wrapper can compose",
                          f"one of {available_bases()}")
        node = OmegaConf.load(DATA_CONFIG_DIR / f"{base}.yaml")
    elif isinstance(base, dict) or OmegaConf.is_dict(base):
        node = OmegaConf.create(OmegaConf.to_container(base, resolve=False) if OmegaConf.is_dict(base) else base)
    else:
        raise invalid("data.base", base, "neither a name nor a mapping", f"one of {available_bases()}")
    if "_target_" not in node:
        raise invalid("data.base", base, "the config has no _target_", "a datamodule config")
    root = OmegaConf.create({"sampler": None, "augment": None, "seed": seed, "data": node})
    if overrides:
        root.data = OmegaConf.merge(root.data, OmegaConf.create(dict(overrides)))
    root.data.sampler, root.data.augment = None, None
    return OmegaConf.to_container(root.data, resolve=True)  # type: ignore[return-value]


def _instantiate(cfg: dict[str, Any], **kw: Any) -> FaceDataModule:
    from hydra.utils import instantiate  # instantiate only (no Hydra app): the zoo's way to build a config

    return instantiate(cfg, **kw)


# ---- cache ------------------------------------------------------------------------------------------------------------
def file_stats(paths: Sequence[str | os.PathLike]) -> list[list[Any]]:
    """[real path, size, mtime_ns] of each distinct file (the data part of a cache key; real paths, so two
    checkouts that reach the same data through ``<checkout>/../shared/data`` share the cache)."""
    out = []
    for p in sorted({os.path.realpath(str(p)) for p in paths}):
        try:
            st = os.stat(p)
            out.append([p, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([p, -1, -1])
    return out


def loader_sizes(base_cfg: Any, batch_size: int | None, num_workers: int | None,
                 eval_batch_size: int | None) -> dict[str, Any]:
    """A wrapper datamodule's batch_size / num_workers / eval_batch_size: its own values, else its base config's."""
    return {"batch_size": batch_size if batch_size is not None else base_cfg.get("batch_size", 64),
            "num_workers": num_workers if num_workers is not None else base_cfg.get("num_workers", 2),
            "eval_batch_size": eval_batch_size or base_cfg.get("eval_batch_size")}


def dataset_files(ds: Any) -> list[str]:
    """The files a base training dataset reads: records' images + annotation files (landmarks), ``files``
    (identities). Raises when the dataset exposes neither (the cache key could not follow the data)."""
    if hasattr(ds, "records"):
        out = []
        for r in ds.records:
            out.append(str(r.image))
            origin = str(getattr(r, "origin", "")).rsplit(":", 1)[0]
            if origin and os.path.isfile(origin):
                out.append(origin)
        return out
    if hasattr(ds, "files"):
        return [str(f) for f in ds.files]
    raise ValueError(f"data.base: training dataset {type(ds).__name__} lists no files ('records' or 'files'); the GAN "
                     f"cache key needs them")


# ---- geometry -------------------------------------------------------------------------------------------------------
def resize_affine(src: int, dst: int) -> np.ndarray:
    """2x3 affine mapping pixel-centre coordinates of a ``src``-px square onto a ``dst``-px square."""
    s = dst / src
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5]], dtype=np.float64)


def invert_affine(a: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(a, dtype=np.float64))


def map_points(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ np.asarray(a)[:, :2].T + np.asarray(a)[:, 2]


def paste_back(real: np.ndarray, gan: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Warp the GAN crop ``gan`` [g, g, 3] uint8 into the frame of ``real`` [S, S, 3] (``affine``: real pixels ->
    GAN pixels) and blend it over ``real`` with the warped crop's coverage as the alpha mask."""
    s = real.shape[0]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    a = np.asarray(affine, dtype=np.float64)
    warped = cv2.warpAffine(gan, a, (s, s), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.warpAffine(np.ones(gan.shape[:2], np.float32), a, (s, s), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    out = mask * warped.astype(np.float32) + (1 - mask) * real.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3]."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_gan(images_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images_uint8)).permute(0, 3, 1, 2).float() / 127.5 - 1


def latent_take(lat: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a batched latent (indexable, or a dataclass of tensors with the batch first)."""
    idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    if dataclasses.is_dataclass(lat):
        n = next(v.shape[0] for v in vars(lat).values() if torch.is_tensor(v))
        return dataclasses.replace(lat, **{k: v[idx_t] for k, v in vars(lat).items()
                                           if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n})
    return lat[idx_t]


def decode(G: Any, lat: Any) -> torch.Tensor:
    if hasattr(G, "decode"):
        return G.decode(lat)
    return G(lat.z)


# ---- the mixed training set ---------------------------------------------------------------------------------------
class GanAugmentedDataset(Dataset):
    """Real training samples ``[0, n_real)`` then GAN samples ``[n_real, n_real + n_gan)``.

    GAN samples come from a bank (uint8 images [M, V, S, S, C] in the base's crop frame; V = 1 for fixed edits,
    ``variants`` for per-epoch edits), normalised like the base's samples (``(x/255 - mean) / std``).
    """

    def __init__(self, real: Dataset, task: str, bank: dict[str, Any], mean: torch.Tensor, std: torch.Tensor,
                 subset_offset: int = 0) -> None:
        self.real, self.task, self.bank = real, task, bank
        self.mean, self.std = mean, std
        self.subset_offset = subset_offset
        self.n_real = len(real)  # type: ignore[arg-type]
        self.n_gan = int(len(bank["base_index"]))
        base_index = np.asarray(bank["base_index"], dtype=np.int64)
        self.source = np.concatenate([np.zeros(self.n_real, np.int64), np.ones(self.n_gan, np.int64)])
        real_ids = getattr(real, "identities", None)
        if real_ids is not None:
            real_ids = real_ids.numpy() if torch.is_tensor(real_ids) else np.asarray(real_ids)
            self.identities = np.concatenate([real_ids, real_ids[base_index]]).astype(np.int64)
        if hasattr(real, "identity_names"):
            self.identity_names = real.identity_names
        self._rng: np.random.Generator | None = None
        self._rng_pid: int | None = None

    def __len__(self) -> int:
        return self.n_real + self.n_gan

    @property
    def num_identities(self) -> int:
        return self.real.num_identities  # type: ignore[attr-defined]

    def without_augmentation(self) -> "GanAugmentedDataset":
        clone = copy.copy(self)
        if hasattr(self.real, "without_augmentation"):
            clone.real = self.real.without_augmentation()  # type: ignore[attr-defined]
        return clone

    def _variant(self, index: Any = None) -> int:
        """Which of the bank's edit variants this draw shows: from the draw's own seed when a zoo sampler drew
        ``index`` (exact mid-epoch resume, see transforms.seed_augment), else a per-process stream."""
        v = self.bank["images"].shape[1]
        if v == 1:
            return 0
        seed = getattr(index, "seed", None)
        if seed is not None:
            return int(np.random.default_rng([seed, 1]).integers(v))
        pid = os.getpid()
        if self._rng_pid != pid:  # per process, from torch's worker seed (seed_everything-reproducible)
            info = get_worker_info()
            self._rng = np.random.default_rng(info.seed if info is not None else torch.initial_seed())
            self._rng_pid = pid
        return int(self._rng.integers(v))  # type: ignore[union-attr]

    def __getitem__(self, index: int) -> dict[str, Any]:
        draw, index = index, int(index)
        if index < self.n_real:
            s = dict(self.real[draw])  # the draw keeps its augmentation seed
            s["source"] = torch.tensor(0, dtype=torch.int64)
            return s
        j = index - self.n_real
        if not 0 <= j < self.n_gan:
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        v = self._variant(draw)
        img = torch.from_numpy(np.ascontiguousarray(self.bank["images"][j, v])).float().div_(255.0)
        img = img[None] if img.dim() == 2 else img.permute(2, 0, 1)
        img = ((img - self.mean) / self.std).contiguous()
        b = int(self.bank["base_index"][j])
        s: dict[str, Any] = {"image": img, "index": torch.tensor(index, dtype=torch.int64),
                             "source": torch.tensor(1, dtype=torch.int64)}
        if self.task == "identities":
            s["identity"] = torch.tensor(int(self.identities[index]), dtype=torch.int64)
            return s
        lm = self.bank["landmarks"][j, v]
        s["landmarks"] = torch.from_numpy(np.ascontiguousarray(lm, dtype=np.float32))
        s["visible"] = torch.ones(len(lm), dtype=torch.bool)
        s["norm"] = torch.tensor(float(self.bank["norm"][j]), dtype=torch.float32)
        sub = self.bank["subset"][j]
        s["subset"] = torch.as_tensor(sub + self.subset_offset if np.ndim(sub) == 0 else sub, dtype=torch.int64)
        if np.ndim(sub) > 0:
            s["attributes"] = s["subset"].bool()
        del b
        return s


# ---- the datamodule ---------------------------------------------------------------------------------------------------
class GanAugmentedDataModule(FaceDataModule):
    """Base datamodule + GAN-edited training copies; see the module docstring for the method and every option.

    Args (config keys ``data.<name>``):
        base, base_overrides: the wrapped data config and changes to it.
        generator: ``zoo.gan`` generator name (``dcgan64`` or a registered one). device: where the GAN runs.
        attributes: InterFaceGAN attributes to edit (``zoo.gan.ATTRIBUTES`` names); one is drawn per copy.
        conditional: edit along the direction with the other listed attributes projected out.
        alpha: ``[min, max]`` of ``|alpha|`` (sign random), 0 <= min <= max <= 10.
        copies: edited copies per inverted face (0: no GAN). max_faces: invert at most this many faces (seeded).
        filter, threshold, detector: the landmark-disagreement filter (``threshold`` in (0, 1], inter-ocular units).
        relabel: landmark bases: take the detector's landmarks on the edit instead of the original's.
        edits: ``fixed`` | ``per_epoch``; variants: edits per copy in per-epoch mode.
        align: alignment landmarks: ``auto`` (the sample's landmarks for a 68-point landmark base, else
            ``detector`` when ``align_detector`` is available, else ``resize``), ``landmarks``, ``detector`` (68
            points from ``align_detector`` on the crop), ``resize`` (the base crop resized to the GAN's size).
            On ytf_identities (24 faces): detector alignment kept 67 % of the edits, resize 29 %.
        encoder_steps, encoder_batch_size, refine_steps, direction_samples: inversion/direction fitting budget.
        gan_seed: seeds the face subset, encoder, directions and edit draws (the run ``seed`` only shuffles), so
            runs with different seeds share one cache.
        cache_dir: where inversions/edits are cached. gan_batch_size: batch of GAN passes.
    """

    def __init__(
        self,
        base: Any = "afw_helen",
        base_overrides: dict | None = None,
        generator: str = "dcgan64",
        attributes: Sequence[str] = ("brightness", "colour_temperature", "smile"),
        conditional: bool = True,
        alpha: Sequence[float] = (1.0, 3.0),
        copies: int = 1,
        max_faces: int | None = None,
        filter: bool = True,
        threshold: float = 0.05,
        detector: str = "dlib:fixed",
        relabel: bool = False,
        edits: str = "fixed",
        variants: int = 4,
        align: str = "auto",
        align_detector: str = "dlib",
        encoder_steps: int = 1500,
        encoder_batch_size: int = 64,
        refine_steps: int = 20,
        direction_samples: int = 2000,
        cache_dir: str = ".cache/gan_augmented",
        device: str = "cpu",
        gan_batch_size: int = 64,
        gan_seed: int = 0,
        batch_size: int | None = None,
        num_workers: int | None = None,
        sampler: Callable[..., Any] | None = None,
        augment: Any = None,
        seed: int = 0,
        eval_batch_size: int | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        drop_last: bool = True,
    ) -> None:
        self.base_name = base if isinstance(base, str) else "custom"
        self.base_cfg = compose_base(base, base_overrides, seed)
        super().__init__(sampler=sampler, seed=seed, pin_memory=pin_memory, persistent_workers=persistent_workers,
                         drop_last=drop_last,
                         **loader_sizes(self.base_cfg, batch_size, num_workers, eval_batch_size))
        self.generator_name = check_str("data.generator", generator)
        if isinstance(attributes, str):
            attributes = [attributes]
        self.attributes = [check_str("data.attributes", a) for a in attributes]
        self.conditional = check_bool("data.conditional", conditional)
        self.alpha = check_range_pair("data.alpha", list(alpha) if not isinstance(alpha, (int, float)) else alpha,
                                      low=0.0, high=10.0)
        if isinstance(alpha, (int, float)):
            self.alpha = (0.0, float(alpha))
        self.copies = check_int("data.copies", copies, low=0)
        self.max_faces = None if max_faces is None else check_int("data.max_faces", max_faces, low=1)
        self.filter = check_bool("data.filter", filter)
        self.threshold = check_number("data.threshold", threshold, low=0.0, high=1.0, high_inclusive=True)
        self.detector_name = check_str("data.detector", detector)
        self.relabel = check_bool("data.relabel", relabel)
        self.edits = check_choice("data.edits", edits, EDIT_MODES)
        self.variants = check_int("data.variants", variants, low=1) if edits == "per_epoch" else 1
        self.align = check_choice("data.align", align, ALIGN_MODES)
        self.align_detector = check_str("data.align_detector", align_detector)
        self.encoder_steps = check_int("data.encoder_steps", encoder_steps, low=0)
        self.encoder_batch_size = check_int("data.encoder_batch_size", encoder_batch_size)
        self.refine_steps = check_int("data.refine_steps", refine_steps, low=0)
        self.direction_samples = check_int("data.direction_samples", direction_samples, low=10)
        self.gan_batch_size = check_int("data.gan_batch_size", gan_batch_size)
        self.gan_seed = check_int("data.gan_seed", gan_seed, low=0)
        cache = Path(check_str("data.cache_dir", cache_dir)).expanduser()
        self.cache_dir = cache if cache.is_absolute() else DATA_CONFIG_DIR.parents[1] / cache  # relative: to the repo
        self.device = device
        if self.copies and not self.attributes:
            raise invalid("data.attributes", list(attributes), "empty", "at least one attribute name when copies > 0")
        self.augment = augment
        self.base = _instantiate(self.base_cfg, augment=augment, sampler=None)
        if not isinstance(self.base, FaceDataModule):
            raise invalid("data.base", self.base_name, f"builds a {type(self.base).__name__}, not a zoo datamodule",
                          "a config of a zoo FaceDataModule")
        self.bank: dict[str, Any] | None = None
        self.report: dict[str, Any] = {}

    # ---- setup -----------------------------------------------------------------------------------------------------
    def _clean_base(self, task: str) -> FaceDataModule:
        """The base as RGB crops in [0, 1] without augmentation: what the GAN inverts."""
        over = {"mean": 0.0, "std": 1.0, "train_fraction": self.base_cfg.get("train_fraction", 1.0)}
        over.update({"grayscale": False} if task == "landmarks" else {"channels": 3})
        cfg = {**self.base_cfg, **{k: v for k, v in over.items() if k in self.base_cfg or k in ("mean", "std")}}
        if task == "landmarks" and "grayscale" not in cfg:
            cfg["grayscale"] = False
        if task == "identities" and "channels" not in cfg:
            cfg["channels"] = 3
        return _instantiate(cfg, augment=None, sampler=None)

    def build_datasets(self) -> dict[str, Dataset | None]:
        self.base.setup()  # not "fit": the wrapper owns the training loader (its batch checks run on the mix)
        info = self.base.info
        check_choice("data.base (its task)", info.task, TASKS)
        real = self.base.datasets.get("train")
        if real is None:
            raise invalid("data.base", self.base_name, "has no training split", "a base with training data")
        out = dict(self.base.datasets)
        self.base_info = info
        self._subset_names = list(info.subset_names or [])
        mean = getattr(real, "mean", torch.zeros(1, 1, 1))
        std = getattr(real, "std", torch.ones(1, 1, 1))
        if self.copies == 0:
            bank = empty_bank(info)
        else:
            bank = self._build_bank(info, real)
        self.bank = bank
        offset = len(self._subset_names) if info.task == "landmarks" and self._subset_names else 0
        out["train"] = GanAugmentedDataset(real, info.task, bank, mean, std, subset_offset=offset)
        log.info("gan_augmented(%s): %d real + %d GAN training samples", self.base_name, len(real),
                 out["train"].n_gan)
        return out

    def _selection(self, n: int) -> np.ndarray:
        idx = np.arange(n)
        if self.max_faces is not None and self.max_faces < n:
            idx = np.sort(np.random.default_rng([self.gan_seed, 7]).permutation(n)[: self.max_faces])
        return idx

    def _build_bank(self, info: DataInfo, real: Dataset) -> dict[str, Any]:
        gan = gan_toolkit()
        unknown = [a for a in self.attributes if a not in gan.ATTRIBUTES]
        if unknown:
            raise invalid("data.attributes", unknown, "unknown attribute name(s)", f"names from {sorted(gan.ATTRIBUTES)}")
        if self.filter or self.relabel or self.align == "detector":
            prefix = self.detector_name.partition(":")[0]
            if prefix == "zoo":
                importlib.import_module("zoo.models.gan_detector")  # registers the zoo landmark model as a detector
            if prefix not in gan.available_detectors():
                raise invalid("data.detector", self.detector_name, "unknown detector",
                              f"one of {list(gan.available_detectors())} (optionally with ':<arg>', e.g. dlib:fixed) "
                              f"or 'zoo:<landmark checkpoint path>'")
        align = self.align
        if align == "auto":
            if info.task == "landmarks" and info.num_landmarks == 68:
                align = "landmarks"
            elif self.align_detector.partition(":")[0] in gan.available_detectors():
                align = "detector"
            else:
                log.warning("data.align=auto: base %r has no 68-point landmarks and data.align_detector=%r is not "
                            "available (%s): aligning by resizing the crop", self.base_name, self.align_detector,
                            gan.available_detectors())
                align = "resize"
        if align == "detector" and self.align_detector.partition(":")[0] not in gan.available_detectors():
            raise invalid("data.align_detector", self.align_detector, "unknown detector",
                          f"one of {list(gan.available_detectors())}")
        if align == "landmarks" and not (info.task == "landmarks" and info.num_landmarks == 68):
            raise invalid("data.align", "landmarks", f"base {self.base_name!r} has no 68-point landmarks",
                          "'detector' or 'resize' for this base")
        if self.relabel and info.task != "landmarks":
            raise invalid("data.relabel", True, "only landmark bases have labels to relabel", "false")
        clean = self._clean_base(info.task)
        clean.setup()
        cds = clean.datasets["train"]
        if len(cds) != len(real):
            raise RuntimeError(f"gan_augmented: the clean copy of base {self.base_name!r} has {len(cds)} training "
                               f"samples, the base {len(real)}: the base's split is not deterministic")
        sel = self._selection(len(cds))
        G = gan.load_generator(self.generator_name, device=self.device)
        settings = {"align": align, "encoder_steps": self.encoder_steps, "encoder_batch_size": self.encoder_batch_size,
                    "refine_steps": self.refine_steps, "detector": self.align_detector if align == "detector" else None,
                    "seed": self.gan_seed, "selection": sel.tolist()}
        base_key = {k: v for k, v in self.base_cfg.items() if k not in TRAINING_ONLY_KEYS}
        key = {"base": base_key, "files": file_stats(dataset_files(cds)),
               "generator": [G.name, G.weights_hash], "inversion": settings}
        folder = self.cache_dir / self.base_name
        det = None

        def detector() -> Any:
            nonlocal det
            if det is None:
                det = gan.load_detector(self.detector_name)
            return det

        def invert() -> dict[str, Any]:
            crops, lms, subsets, norms = load_clean(cds, sel, info.task)
            if align == "landmarks":
                al_lm = lms
            elif align == "detector":
                al_lm = np.asarray(gan.load_detector(self.align_detector)(crops), dtype=np.float32)
            else:
                al_lm = None
            if al_lm is not None:
                al = gan.align_faces(crops, al_lm, generator=G)
                gcrops, affines = al.crops, np.asarray(al.affines, dtype=np.float64)
            else:
                gcrops = to_gan(np.stack([cv2.resize(c, (G.resolution, G.resolution), interpolation=cv2.INTER_AREA)
                                          for c in crops]))
                affines = np.repeat(resize_affine(crops.shape[1], G.resolution)[None], len(crops), 0)
            inv = self._inverter(gan, G)
            lat = inv.invert(gcrops, batch_size=self.gan_batch_size, refine_steps=self.refine_steps)
            return {"latent": lat, "affines": affines, "quality": dict(getattr(inv, "last_quality", {}) or {}),
                    "crops": crops, "landmarks": lms, "subset": subsets, "norm": norms}

        inv_payload, inv_rebuilt = cached(folder / "inversions.pt", key, invert, "GAN cache")
        edit_key = {**key, "edit": {"attributes": self.attributes, "conditional": self.conditional,
                                    "alpha": list(self.alpha), "copies": self.copies, "variants": self.variants,
                                    "filter": self.filter, "threshold": self.threshold, "relabel": self.relabel,
                                    "detector": self.detector_name if (self.filter or self.relabel) else None,
                                    "direction_samples": self.direction_samples,
                                    "channels": info.channels, "image_size": info.image_size}}
        # one edit bank per edit setting (filtered and unfiltered runs do not evict each other); each file still
        # checks the whole key (data, generator, inversion) before it is reused
        bank, edit_rebuilt = cached(folder / f"edits-{key_digest(edit_key['edit'])[:12]}.pt", edit_key,
                                    lambda: self._edit_bank(gan, G, info, inv_payload, sel, detector), "GAN cache")
        self.report = {"inversion_quality": inv_payload["quality"], "inversions_rebuilt": inv_rebuilt,
                       "edits_rebuilt": edit_rebuilt, **bank["report"]}
        log.info("gan_augmented: %s", {k: v for k, v in self.report.items() if k != "preview"})
        return bank

    def _inverter(self, gan: Any, G: Any) -> Any:
        """zoo.gan's Inverter with its encoder trained once (zoo.gan caches it in cache_dir, keyed on the weights)."""
        inv = gan.Inverter(G, cache_dir=str(self.cache_dir))
        return inv.fit_encoder(steps=self.encoder_steps, batch_size=self.encoder_batch_size, seed=self.gan_seed) or inv

    def _directions(self, gan: Any, G: Any) -> Any:
        """InterFaceGAN directions (zoo.gan.fit_directions caches them itself, keyed on the generator's weights)."""
        return gan.fit_directions(G, list(self.attributes), n_samples=self.direction_samples, seed=self.gan_seed,
                                  detector=self.detector_name, cache_dir=str(self.cache_dir))

    def _edit_bank(self, gan: Any, G: Any, info: DataInfo, inv: dict[str, Any], sel: np.ndarray,
                   detector: Callable[[], Any]) -> dict[str, Any]:
        """Edit every inverted face ``copies x variants`` times; filter; paste back into the base frame."""
        dirs = self._directions(gan, G)
        vec = {a: torch.as_tensor(dirs.conditional(a, condition=[b for b in self.attributes if b != a])
                                  if self.conditional and len(self.attributes) > 1 else dirs[a]).float()
               for a in self.attributes}
        n, c, v = len(sel), self.copies, self.variants
        rng = np.random.default_rng([self.gan_seed, 11])
        attr = rng.integers(len(self.attributes), size=(n, c, v))
        alpha = rng.uniform(self.alpha[0], self.alpha[1], size=(n, c, v)) * rng.choice([-1.0, 1.0], size=(n, c, v))
        lat = inv["latent"]
        g = G.resolution
        edited = np.zeros((n, c, v, g, g, 3), np.uint8)
        with torch.no_grad():
            recon = torch.cat([decode(G, latent_take(lat, np.arange(i, min(i + self.gan_batch_size, n))))
                               for i in range(0, n, self.gan_batch_size)])
            for ai, a in enumerate(self.attributes):
                where = np.argwhere(attr == ai)
                for s in range(0, len(where), self.gan_batch_size):
                    w = where[s: s + self.gan_batch_size]
                    imgs = gan.edit(G, latent_take(lat, w[:, 0]), vec[a],
                                    torch.as_tensor(alpha[w[:, 0], w[:, 1], w[:, 2]], dtype=torch.float32))
                    edited[w[:, 0], w[:, 1], w[:, 2]] = to_uint8(imgs)
        flat = edited.reshape(n * c * v, g, g, 3)
        face = np.repeat(np.arange(n), c * v)
        score = np.full(n * c * v, np.nan, np.float32)
        keep = np.ones(n * c * v, bool)
        if self.filter:
            filt = gan.LandmarkDisagreement(detector(), threshold=self.threshold)
            # the originals' landmarks once (not once per copy)
            orig_lm = np.concatenate([np.asarray(filt.detect(recon[i: i + self.gan_batch_size]), np.float32)
                                      for i in range(0, n, self.gan_batch_size)])
            for s in range(0, len(flat), self.gan_batch_size):
                f = face[s: s + self.gan_batch_size]
                res = filt(recon[f], to_gan(flat[s: s + self.gan_batch_size]), original_landmarks=orig_lm[f])
                score[s: s + len(res["score"])] = np.asarray(torch.as_tensor(res["score"]).float())
                keep[s: s + len(res["keep"])] = np.asarray(torch.as_tensor(res["keep"]).bool())
        relabeled = None
        if self.relabel:
            relabeled = np.concatenate([np.asarray(detector()(flat[s: s + self.gan_batch_size]), np.float32)
                                        for s in range(0, len(flat), self.gan_batch_size)])
        # a copy is kept when all its variants pass (per-epoch mode draws among them)
        keep_copy = keep.reshape(n, c, v).all(axis=2)
        crops, affines = inv["crops"], inv["affines"]
        rows = np.argwhere(keep_copy)
        s_img = crops.shape[1]
        gray = info.channels == 1
        images = np.zeros((len(rows), v, s_img, s_img) + (() if gray else (3,)), np.uint8)
        landmarks = None
        if info.task == "landmarks":
            landmarks = np.zeros((len(rows), v) + inv["landmarks"].shape[1:], np.float32)
        for r, (i, k) in enumerate(rows):
            for j in range(v):
                pasted = paste_back(crops[i], edited[i, k, j], affines[i])
                images[r, j] = cv2.cvtColor(pasted, cv2.COLOR_RGB2GRAY) if gray else pasted
                if landmarks is not None:
                    if relabeled is not None:
                        pts = relabeled[(i * c + k) * v + j]
                        landmarks[r, j] = map_points(invert_affine(affines[i]), pts)
                    else:
                        landmarks[r, j] = inv["landmarks"][i]
        base_index = sel[rows[:, 0]] if len(rows) else np.zeros(0, np.int64)
        bank = {"images": images, "landmarks": landmarks, "base_index": base_index.astype(np.int64),
                "norm": inv["norm"][rows[:, 0]] if inv["norm"] is not None and len(rows) else np.zeros(0, np.float32),
                "subset": inv["subset"][rows[:, 0]] if inv["subset"] is not None and len(rows) else np.zeros(0, np.int64),
                "attribute": [[self.attributes[attr[i, k, j]] for j in range(v)] for i, k in rows],
                "alpha": alpha[rows[:, 0], rows[:, 1]] if len(rows) else np.zeros((0, v)),
                "score": score.reshape(n, c, v)[rows[:, 0], rows[:, 1]] if len(rows) else np.zeros((0, v))}
        m = min(n, 8)
        bank["report"] = {
            "faces_inverted": int(n), "edits_made": int(n * c * v), "copies_kept": int(len(rows)),
            "keep_rate": float(keep.mean()) if keep.size else float("nan"),
            "score_mean": float(np.nanmean(score)) if self.filter and score.size else None,
            "preview": {"originals": to_uint8(recon[:m]), "real": crops[:m],
                        "edits": edited[:m, 0, 0], "keep": keep.reshape(n, c, v)[:m, 0, 0],
                        "score": score.reshape(n, c, v)[:m, 0, 0],
                        "attribute": [self.attributes[a] for a in attr[:m, 0, 0]], "alpha": alpha[:m, 0, 0]},
        }
        return bank

    # ---- FaceDataModule ------------------------------------------------------------------------------------------
    def data_info(self) -> DataInfo:
        info = copy.copy(self.base_info)
        train = self.datasets.get("train")
        info.sizes = {s: len(d) if d is not None else 0 for s, d in self.datasets.items()}
        if info.task == "landmarks" and self._subset_names and train is not None and train.n_gan:
            info.subset_names = self._subset_names + [f"gan/{n}" for n in self._subset_names]
        return info

    def pairs(self, split: str = "val", with_folds: bool = False) -> list[tuple]:
        """The base's verification pairs (identity bases; val/test are the base's own datasets)."""
        if not hasattr(self.base, "pairs"):
            raise AttributeError(f"data.base {self.base_name!r} has no verification pairs")
        return self.base.pairs(split, with_folds=with_folds)

    def gan_preview(self) -> dict[str, Any] | None:
        """A few originals / edits / verdicts of the edit bank (for the W&B grid callback), or None."""
        self.setup()
        return (self.report or {}).get("preview")


def empty_bank(info: DataInfo) -> dict[str, Any]:
    s = info.image_size
    shape = (0, 1, s, s) + (() if info.channels == 1 else (3,))
    return {"images": np.zeros(shape, np.uint8), "base_index": np.zeros(0, np.int64),
            "landmarks": np.zeros((0, 1, info.num_landmarks or 0, 2), np.float32), "norm": np.zeros(0, np.float32),
            "subset": np.zeros(0, np.int64), "attribute": [], "alpha": np.zeros((0, 1)), "score": np.zeros((0, 1)),
            "report": {}}


def load_clean(ds: Dataset, sel: np.ndarray, task: str) -> tuple[np.ndarray, Any, Any, Any]:
    """uint8 RGB crops [N, S, S, 3] (+ landmarks [N, L, 2], subset ids, norms for landmark samples) of ``sel``."""
    crops, lms, subs, norms = [], [], [], []
    for i in sel:
        s = ds[int(i)]
        img = s["image"]
        if img.shape[0] != 3:
            raise ValueError(f"gan_augmented: the clean base copy gave {img.shape[0]}-channel crops; expected RGB")
        crops.append((img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
        if task == "landmarks":
            lms.append(s["landmarks"].numpy())
            subs.append(s["subset"].numpy() if "subset" in s else np.int64(0))
            norms.append(float(s["norm"]))
    crops_a = np.stack(crops)
    if task != "landmarks":
        return crops_a, None, None, None
    return crops_a, np.stack(lms).astype(np.float32), np.stack(subs), np.asarray(norms, np.float32)


# ---- figures and export ---------------------------------------------------------------------------------------------
def preview_grid(preview: dict[str, Any], scale: int = 2) -> np.ndarray:
    """uint8 RGB grid (zoo.gan.verdict_grid): per face, the GAN reconstruction (the filter's reference), then its
    edit framed green (kept) or red (rejected by the filter; all green when the filter is off)."""
    return gan_toolkit().verdict_grid(preview["originals"], preview["edits"], np.asarray(preview["keep"], bool), scale=scale)


def write_augmented(dm: GanAugmentedDataModule, out_dir: str | os.PathLike, image_format: str = "png") -> dict[str, Any]:
    """Write the GAN training copies of ``dm`` in the base's format under ``out_dir/train``: 300-W style
    ``gan_00000.png`` + ``.pts`` (1-based) for landmark bases, ``<identity>/gan_00000.png`` folders for identity
    bases; ``gan_provenance.csv`` (file, base training index, attribute, alpha, filter score); the figure
    ``gan_grid.png`` (real / reconstruction / edit with verdict). Images are in the base's crop frame, size and
    channels (variant 0 of each copy in per-epoch mode). Returns counts and paths."""
    import csv

    from zoo.io.pts import write_pts

    image_format = check_choice("image_format", image_format, ("png", "jpg"))
    dm.setup()  # no training: no batch-size check
    out = Path(out_dir)
    train = out / "train"
    train.mkdir(parents=True, exist_ok=True)
    bank, info = dm.bank or {}, dm.info
    ds = dm.datasets["train"]
    rows = []
    for j in range(ds.n_gan):
        img = bank["images"][j, 0]
        if info.task == "landmarks":
            path = train / f"gan_{j:05d}.{image_format}"
            write_pts(path.with_suffix(".pts"), bank["landmarks"][j, 0], one_based=True)
        else:
            name = ds.identity_names[int(ds.identities[ds.n_real + j])]
            path = train / str(name) / f"gan_{j:05d}.{image_format}"
            path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        rows.append([str(path.relative_to(out)), int(bank["base_index"][j]), bank["attribute"][j][0],
                     float(bank["alpha"][j][0]), float(bank["score"][j][0])])
    with open(train / "gan_provenance.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "base_train_index", "attribute", "alpha", "filter_score"])
        w.writerows(rows)
    result: dict[str, Any] = {"written": len(rows), "dir": str(train), "report": {k: v for k, v in dm.report.items()
                                                                                  if k != "preview"}}
    preview = dm.gan_preview()
    if preview is not None:
        grid = out / "gan_grid.png"
        cv2.imwrite(str(grid), cv2.cvtColor(preview_grid(preview), cv2.COLOR_RGB2BGR))
        result["grid"] = str(grid)
    return result
