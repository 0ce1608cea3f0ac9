"""``LandmarkDataModule``: real landmark data (300-W folders, keypoint CSV files, WFLW lists) for zoo models.

Sources (``format``):

* ``pts_folder``: ``root`` = a folder or a list of folders of image + ``.pts`` pairs (zoo.io.folders)
* ``csv``:        ``annotations`` = keypoint CSV file(s) (zoo.io.keypoint_csv), images under ``image_root``
* ``wflw``:       ``annotations`` = WFLW list file(s) (zoo.io.wflw), images under ``image_root``

Relative paths (``root``, ``annotations``, ``image_root``, ``split_files``) are taken relative to ``data_dir``
when it is set (itself relative to the working directory, else to the repository checkout).
``root`` / ``annotations`` may also be a mapping ``{train: ..., val: ..., test: ...}`` giving the splits
(e.g. WFLW's official train/test lists); a split it leaves out is carved from ``train`` with its fraction.
Otherwise all records are pooled and split by ``split_files`` (text files listing record keys, one a line)
or by the seeded fractions ``val_fraction`` / ``test_fraction`` (whole groups, ``split_by``: ``image`` keeps
the faces of one image file together, ``group`` also crops ``x_1``/``x_2`` of one photo and frames ``name_07`` of
one person, ``sample`` none). ``train_fraction`` then keeps a seeded, nested subset of
the training split (0.1/0.25/0.5/1.0). ``split_seed`` defaults to ``seed``.

``test_only: true`` makes every record of ``root`` / ``annotations`` the test split, with no splitting and no
training or validation split (what evaluate.py needs to test a checkpoint on a folder or file of your own:
``configs/data/pts_folder.yaml``, ``keypoint_csv_file.yaml``, ``wflw_list.yaml``). Such a datamodule refuses
``setup("fit")`` naming ``data.test_only``. The geometry keys in :attr:`LandmarkDataModule.checkpoint_keys` may be
null in those configs: evaluate.py fills them from the checkpoint's own data config, so the crops match training.

Bad input: annotation files are validated at setup (wrong point count, NaN, unreadable, empty folder, missing
CSV column, coordinates normalised to [0, 1], landmarks more than one image side outside their image (read
from the image header): ValueError naming the file and row); images are decoded lazily and a corrupt one
raises ValueError naming it. ``data.batch_size`` larger than the training split (drop_last) fails at setup. With ``on_bad_sample: skip`` defective annotations and undecodable images (``check_images`` defaults to
True then) are skipped at setup with one warning each, listed in ``self.skipped`` and summarised in the log
at the end of setup and again at teardown.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Sequence

from zoo.checks import check_bool, check_choice, check_fraction, check_int, check_number, check_positive, invalid
from zoo.datamodules.base import FaceDataModule
from zoo.datamodules.crop import NORMS, face_square, protocol_norm
from zoo.datamodules.landmark_datasets import SPLIT_BY, SPLITS, LandmarkDataset, fraction_split, train_subset
from zoo.datamodules.samples import DataInfo
from zoo.datamodules.transforms import LandmarkAugment
from zoo.io.folders import read_pts_folder
from zoo.io.images import IMAGE_SUFFIXES, check_image, image_size
from zoo.io.keypoint_csv import read_keypoint_csv
from zoo.io.records import LandmarkRecord, check_in_image
from zoo.io.wflw import WFLW_ATTRIBUTES, read_wflw_list
from zoo.schemes import get_scheme

log = logging.getLogger(__name__)
FORMATS = ("pts_folder", "csv", "wflw")


REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """``data_dir`` as given when absolute or present relative to the working directory, else relative to the
    repository checkout (so ``../shared/data`` works wherever ``train.py`` is started from)."""
    if data_dir is None:
        return None
    p = Path(data_dir).expanduser()
    if p.is_absolute() or p.exists():
        return p
    alt = REPO_ROOT / p
    return alt if alt.exists() else p


def _paths(value: Any, key: str, base: Path | None = None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        value = [value]
    elif not isinstance(value, Sequence):
        raise ValueError(f"data.{key} must be a path or a list of paths, got {type(value).__name__}")
    out = [Path(v).expanduser() for v in value]
    return [base / p if base is not None and not p.is_absolute() else p for p in out]


class LandmarkDataModule(FaceDataModule):
    """Real landmark datamodule (module docstring). Geometry/image options:

    image_size: crop side in pixels (96, the seed-002 input). crop_scale: face square = crop_scale · max(w, h) of
    the given box or else the landmark box (1.2–1.3 usual). grayscale: 1 channel (seed 002) or RGB.
    norm: normalising distance per protocol (``inter_ocular`` for 300-W/WFLW, ``inter_pupil``, ``box``,
    ``diagonal``). mean/std: image = (x/255 - mean)/std, default [0, 1]. interpolation: ``area`` (INTER_AREA
    reduction before the warp when downscaling) or ``linear``. augment: a recipe from
    zoo.datamodules.transforms (train split only) or None. test_only: every record is the test split (module
    docstring).
    """

    #: data config keys that evaluate.py fills from the checkpoint's data config when they are null (crop geometry
    #: and normalisation must match training; zoo.run.evaluate)
    checkpoint_keys = ("image_size", "crop_scale", "grayscale", "norm", "mean", "std", "interpolation", "scheme")

    def __init__(
        self,
        format: str = "pts_folder",
        root: Any = None,
        annotations: Any = None,
        data_dir: str | None = None,
        image_root: str | None = None,
        scheme: str = "ibug68",
        split_files: Mapping[str, str] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        train_fraction: float = 1.0,
        split_seed: int | None = None,
        split_by: str = "image",
        image_size: int = 96,
        crop_scale: float = 1.25,
        grayscale: bool = True,
        norm: str = "inter_ocular",
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
        interpolation: str = "area",
        augment: LandmarkAugment | None = None,
        on_bad_sample: str = "error",
        check_images: bool | None = None,
        one_based: bool | None = None,
        filename_column: str | None = None,
        test_only: bool = False,
        sampler: Callable[..., Any] | None = None,
        **loader: Any,
    ) -> None:
        super().__init__(sampler=sampler, **loader)
        self.test_only = check_bool("data.test_only", test_only)
        # null checkpoint_keys (evaluation configs leave them to the checkpoint): the defaults above
        scheme = _DEFAULTS["scheme"] if scheme is None else scheme
        norm = _DEFAULTS["norm"] if norm is None else norm
        interpolation = _DEFAULTS["interpolation"] if interpolation is None else interpolation
        image_size = _DEFAULTS["image_size"] if image_size is None else image_size
        crop_scale = _DEFAULTS["crop_scale"] if crop_scale is None else crop_scale
        grayscale = _DEFAULTS["grayscale"] if grayscale is None else grayscale
        mean = _DEFAULTS["mean"] if mean is None else mean
        std = _DEFAULTS["std"] if std is None else std
        check_choice("data.format", format, FORMATS)
        check_choice("data.on_bad_sample", on_bad_sample, ("error", "skip"))
        check_choice("data.norm", norm, NORMS)
        check_choice("data.split_by", split_by, SPLIT_BY)
        check_choice("data.interpolation", interpolation, ("area", "linear"))
        check_number("data.val_fraction", val_fraction, low=0, high=1, low_inclusive=True)
        check_number("data.test_fraction", test_fraction, low=0, high=1, low_inclusive=True)
        if val_fraction + test_fraction >= 1:
            raise invalid("data.val_fraction", val_fraction, f"with data.test_fraction={test_fraction} it leaves no "
                          "training data", "data.val_fraction + data.test_fraction < 1")
        check_fraction("data.train_fraction", train_fraction)
        check_int("data.image_size", image_size, low=8)
        check_positive("data.crop_scale", crop_scale)
        if augment is not None and not isinstance(augment, LandmarkAugment):
            raise invalid("data.augment", type(augment).__name__, "not an augmentation recipe",
                          "a zoo.datamodules.transforms recipe (configs/augment) or null")
        source = root if format == "pts_folder" else annotations
        if source is None:
            need = "root" if format == "pts_folder" else "annotations"
            raise invalid(f"data.{need}", None, f"required for data.format={format!r}", "a path or a list of paths")
        self.format, self.source, self.scheme, self.data_dir = format, source, get_scheme(scheme), resolve_data_dir(data_dir)
        self.image_root = _paths(image_root, "image_root", self.data_dir)[0] if image_root is not None else None
        self.split_files, self.split_by, self.train_fraction = split_files, split_by, float(train_fraction)
        self.fractions = {"test": float(test_fraction), "val": float(val_fraction)}
        self.split_seed = self.seed if split_seed is None else check_int("data.split_seed", split_seed, low=0)
        self.image_size, self.crop_scale, self.grayscale, self.norm = image_size, float(crop_scale), bool(grayscale), norm
        self.mean, self.std, self.interpolation, self.augment = mean, std, interpolation, augment
        self.on_bad_sample, self.filename_column = on_bad_sample, filename_column
        self.check_images = on_bad_sample == "skip" if check_images is None else bool(check_images)
        self.one_based = format == "pts_folder" if one_based is None else one_based  # .pts files are 1-based
        self.skipped: list[tuple[str, str]] = []
        self.num_records = 0

    # ---- reading -----------------------------------------------------------------------------------------------
    def _read(self, value: Any, key: str) -> list[LandmarkRecord]:
        errors = self.skipped if self.on_bad_sample == "skip" else None
        n = self.scheme.num_landmarks
        out: list[LandmarkRecord] = []
        for p in _paths(value, key, self.data_dir):
            if self.format == "pts_folder":
                try:
                    out += read_pts_folder(p, num_points=n, one_based=self.one_based, errors=errors)
                except (ValueError, FileNotFoundError) as e:
                    if str(e).startswith(f"{p}:"):  # the folder itself (missing, no pairs): name the key too
                        where = f" under data.data_dir={self.data_dir}" if self.data_dir is not None else ""
                        raise type(e)(f"data.{key}={value!r}{where}: {e}; expected a folder with image + .pts "
                                      f"pairs of the same name (face.jpg + face.pts, {'/'.join(IMAGE_SUFFIXES)})") \
                            from None
                    raise
            elif self.format == "csv":
                out += read_keypoint_csv(p, num_points=n, image_root=self.image_root,
                                         filename_column=self.filename_column, one_based=self.one_based,
                                         errors=errors)
            else:
                if n != 98:
                    raise ValueError(f"data.format='wflw' has 98 points; set data.scheme=wflw98, not {self.scheme.name!r}")
                out += read_wflw_list(p, image_root=self.image_root, one_based=self.one_based, errors=errors)
        return out

    def _validate(self, records: list[LandmarkRecord]) -> list[LandmarkRecord]:
        """Geometry (non-degenerate face box and norm), image existence, landmarks inside the image (within one
        image side, from the image header) and, with check_images, decodability."""
        good = []
        for r in records:
            try:
                face_square(r.landmarks, r.box, self.crop_scale)
                if not protocol_norm(r.landmarks, self.scheme, self.norm, r.box) > 0:
                    raise ValueError(f"{r.origin}: {self.norm} distance is 0 (degenerate annotation)")
                if self.check_images:
                    check_image(r.image)
                if not r.image.is_file():
                    raise FileNotFoundError(f"{r.image}: image file not found (annotation {r.origin})")
                check_in_image(r.landmarks, *image_size(r.image), r.origin, r.image)  # header only: cheap
            except (ValueError, FileNotFoundError) as e:
                msg = str(e) if r.origin in str(e) or str(r.image) in str(e) else f"{r.origin}: {e}"
                if self.on_bad_sample == "error":
                    raise type(e)(msg) from None
                self.skipped.append((r.origin, msg))
                continue
            good.append(r)
        return good

    def _load(self, value: Any, key: str) -> list[LandmarkRecord]:
        before = len(self.skipped)
        recs = self._validate(self._read(value, key))
        for origin, msg in self.skipped[before:]:
            log.warning("skipping bad sample %s", msg)
        return recs

    # ---- splits ---------------------------------------------------------------------------------------------------
    def _split(self) -> dict[str, list[LandmarkRecord]]:
        key = "root" if self.format == "pts_folder" else "annotations"
        if self.test_only:
            if isinstance(self.source, Mapping) or self.split_files:
                raise invalid("data.test_only", True, f"data.{key} is given per split or data.split_files is set",
                              f"one data.{key} (a path or a list of paths) whose every record is the test split")
            pool = self._load(self.source, key)
            self.num_records = len(pool)
            return {"test": sorted(pool, key=lambda r: r.key)}
        if isinstance(self.source, Mapping):
            unknown = set(self.source) - set(SPLITS)
            if unknown:
                raise ValueError(f"data.{key} split names {sorted(unknown)} unknown; expected {list(SPLITS)}")
            if "train" not in self.source:
                raise ValueError(f"data.{key} given per split must include 'train'")
            parts = {s: self._load(v, f"{key}.{s}") for s, v in self.source.items()}
            missing = {s: f for s, f in self.fractions.items() if s not in parts and f > 0}
            if missing:
                total = len(parts["train"])
                carved = fraction_split(parts["train"], missing, self.split_seed, self.split_by)
                parts["train"] = carved.pop("rest")
                parts.update(carved)
                log.info("carved %s from %d training records", {k: len(v) for k, v in carved.items()}, total)
            self.num_records = sum(len(v) for v in parts.values())
            return parts
        pool = self._load(self.source, key)
        self.num_records = len(pool)
        if self.split_files:
            return self._split_by_files(pool)
        parts = fraction_split(pool, self.fractions, self.split_seed, self.split_by)
        parts["train"] = parts.pop("rest")
        return parts

    def _split_by_files(self, pool: list[LandmarkRecord]) -> dict[str, list[LandmarkRecord]]:
        unknown = set(self.split_files) - set(SPLITS)
        if unknown:
            raise ValueError(f"data.split_files names {sorted(unknown)} unknown; expected {list(SPLITS)}")
        by_key = {r.key: r for r in pool}
        short: dict[str, LandmarkRecord | None] = {}
        for r in pool:  # keys without the source prefix, when unambiguous
            s = r.key.split("/", 1)[-1]
            short[s] = None if s in short else r
        parts: dict[str, list[LandmarkRecord]] = {}
        owner: dict[str, str] = {}
        for split, path in self.split_files.items():
            path = _paths(path, f"split_files.{split}", self.data_dir)[0]
            if not path.is_file():
                raise FileNotFoundError(f"data.split_files.{split}: {path} not found")
            names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            recs, missing = [], []
            for name in names:
                r = by_key.get(name) or short.get(name)
                if r is None:
                    missing.append(name)
                    continue
                if r.key in owner:
                    raise ValueError(f"{path}: {name!r} is also listed for split {owner[r.key]!r}; splits must be disjoint")
                owner[r.key] = split
                recs.append(r)
            if missing:
                raise ValueError(f"{path}: {len(missing)} listed sample(s) not found among the records (or skipped as "
                                 f"bad), e.g. {missing[:3]}; expected record keys such as {pool[0].key!r}")
            parts[split] = sorted(recs, key=lambda r: r.key)
        unused = len(pool) - len(owner)
        if unused:
            log.warning("%d record(s) are listed in no split file and are not used", unused)
        if "train" not in parts:
            raise ValueError("data.split_files must include 'train'")
        return parts

    # ---- FaceDataModule -------------------------------------------------------------------------------------------
    def build_datasets(self) -> dict[str, LandmarkDataset | None]:
        self.skipped = []
        parts = self._split()
        train = parts.get("train", [])
        if self.test_only:
            if not parts["test"]:
                raise ValueError(f"{self.source}: no usable record for the test split (data.test_only; "
                                 f"{len(self.skipped)} bad sample(s) skipped)")
        elif not train:
            raise ValueError(f"{self.source}: the training split is empty (after splitting and skipping "
                             f"{len(self.skipped)} bad sample(s))")
        parts["train"] = train_subset(train, self.train_fraction, self.split_seed) if train else []
        self.source_names = tuple(sorted({r.source for recs in parts.values() for r in recs}))
        common = dict(source_names=self.source_names, scheme=self.scheme, image_size=self.image_size, crop_scale=self.crop_scale,
                      grayscale=self.grayscale, norm=self.norm, mean=self.mean, std=self.std,
                      interpolation=self.interpolation,
                      attribute_names=WFLW_ATTRIBUTES if self.format == "wflw" else None)
        datasets = {s: (LandmarkDataset(parts[s], augment=self.augment if s == "train" else None, **common)
                        if parts.get(s) else None) for s in SPLITS}
        sizes = {s: len(d) if d is not None else 0 for s, d in datasets.items()}
        log.info("landmark data %s: %d records -> %s (train_fraction %s)", self.format, self.num_records, sizes,
                 self.train_fraction)
        self._summarise_skipped()
        return datasets

    def _summarise_skipped(self) -> None:
        if self.skipped:
            log.warning("on_bad_sample=skip: skipped %d bad sample(s) of %d; first: %s (full list in "
                        "datamodule.skipped)", len(self.skipped), len(self.skipped) + self.num_records,
                        self.skipped[0][1])

    def setup(self, stage: str | None = None) -> None:
        if stage == "fit" and self.test_only:
            raise invalid("data.test_only", True, "this data config makes every record the test split, so there is "
                          "nothing to train on", "a data config with a training split for train.py (e.g. data=afw_helen, "
                          "data=300w, data=keypoint_csv), or use it with evaluate.py")
        super().setup(stage)

    def teardown(self, stage: str | None = None) -> None:
        self._summarise_skipped()

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """Names of the int flags in ``sample["subset"]`` (WFLW), empty for source-id subsets."""
        return WFLW_ATTRIBUTES if self.format == "wflw" else ()

    def data_info(self) -> DataInfo:
        return DataInfo(task="landmarks", image_size=self.image_size, channels=1 if self.grayscale else 3,
                        scheme=self.scheme.name, num_landmarks=self.scheme.num_landmarks,
                        flip_permutation=list(self.scheme.flip_permutation),
                        subset_names=list(self.attribute_names or getattr(self, "source_names", ())) or None,
                        sizes={s: len(d) if d is not None else 0 for s, d in self.datasets.items()})


_DEFAULTS = {k: p.default for k, p in inspect.signature(LandmarkDataModule.__init__).parameters.items()
             if k in LandmarkDataModule.checkpoint_keys}
