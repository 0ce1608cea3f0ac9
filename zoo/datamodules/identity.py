"""Identity datamodules for face recognition: folder-per-identity trees, file lists/CSV, names parsed by regex.

Sources (``layout``):

* ``folders``: ``root/<identity>/<image>`` (CASIA-WebFace, LFW, ../shared/data/johns). A folder without
  images is an error naming it (``on_bad_sample: skip``: skipped with a warning and a count).
* ``regex``: images directly in ``root`` (``recursive: true`` for sub-folders); the identity is the
  ``identity`` group (or group 1) of ``name_regex`` matched against the file stem, by default
  ``^(?P<identity>.+)_\\d+$`` = name without the trailing frame number (../shared/data/ytf_keypoints).
* ``list``: a CSV / text file (``list_file``) with a path column (relative to ``root``) and an identity
  column, named by header or 0-based position (``header: false``); optional face box columns.

Splits are **by identity**: identity names are sorted, permuted with ``numpy.random.default_rng(split_seed)``
and dealt to test (``test_fraction``), val (``val_fraction``) and train (the rest), so no validation or test
identity is ever trained on. A split with a fraction > 0 gets at least 2 identities (impostor pairs need
two). ``val_root`` / ``test_root`` instead take a whole second source (same layout) as that split, e.g. LFW.
Labels are contiguous 0..N-1 inside each split (``dataset.identity_names[label]`` is the name).

``train_fraction`` (seed 000 Table 1: 10/25/50/100 % of the real data) subsets the training split, nested
(10 % ⊂ 25 % ⊂ 50 % for one ``split_seed``):

* ``fraction_mode: images`` (default): every training identity keeps ceil(f · n) of its n images, at least
  min(n, 2) so it can still form positive pairs;
* ``fraction_mode: identities``: ceil(f · N) of the N training identities with all their images.

Face crop: ``crop: full`` (the square around the whole image, zero padded) or ``crop: keypoints``
(``keypoints_file``: CSV ``filename,x0,y0,...`` as read by :mod:`zoo.io.keypoint_csv`; the square around the
points' box enlarged by ``crop_scale``) or ``crop: aligned`` (the same keypoints file; the ArcFace 5-point
similarity alignment of :func:`zoo.datamodules.crop.align_matrix`: eye centres, nose tip and mouth corners onto
the insightface template scaled to ``image_size``; ``crop_scale`` is not used) or ``crop: box`` (the list file's box columns, enlarged by
``crop_scale``; ``box_format: xywh`` = top-left pixel and size, ``xyxy`` = 0-based pixel-centre corners).
The square is warped to ``image_size`` (area pre-filter when shrinking, :mod:`zoo.datamodules.crop`), geometric augmentation (shift, rotation, zoom, flip) happens inside that warp
and photometric augmentation after it (``augment``: a :mod:`zoo.datamodules.transforms` recipe as built by
``configs/augment``, or a dict of :func:`zoo.datamodules.transforms.light` arguments, e.g.
``{flip: 0.5, shift: 0.05, rotation: 0, brightness: 0.1, contrast: 0.1}``; training split only).
Image values: ``(x / 255 - mean) / std``, default mean = std = 0.5 -> [-1, 1]; RGB, or ``channels: 1`` for
grayscale.

``data_dir``: the folder the relative paths of ``root`` (default: ``data_dir`` itself), ``list_file``,
``keypoints_file``, ``val_root``, ``test_root`` and ``pairs_files`` are taken under
(``python evaluate.py ckpt_path=... data=identity_folder data.data_dir=/my/faces``).
``evaluate_all`` (``data=identity_folder``: true): when evaluate.py is given this data config on its command line
(:meth:`IdentityDataModule.prepare_evaluation`), every identity of the folder is a test identity, with pairs
generated among all of them or read from ``pairs_files: {test: <LFW pairs.txt>}`` (a pair naming a missing image
is an error listing them, never skipped); train.py ignores it.

Identity dataset interface (what the P×K sampler and the pair sets read without loading images):
``identities`` (int64 numpy [N], label per sample), ``identity_names`` (label -> name), ``files`` (Path per
sample). Bad images: ``on_bad_sample: error`` raises naming the file; ``skip`` warns and replaces the sample by
the next readable image of the same identity (counted in ``dataset.bad_files``). ``verify_images: true``
decodes every file at setup instead, so ``skip`` removes unreadable files before splitting (count warned).
``min_images_per_identity: n`` drops identities with fewer than n images of ``root`` before splitting (count
warned; ``val_root``/``test_root`` are kept whole so a pairs file can name any of their images).
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.checks import check_bool, check_choice, check_fraction, check_int, check_number, invalid
from zoo.datamodules.base import FaceDataModule
from zoo.datamodules.crop import CROPS, CropGeometry, align_matrix, crop_matrix, face_square, five_points, warp_crop
from zoo.datamodules.pairs import SPLITS, VerificationPairs, generated_pairs, pairs_from_file
from zoo.datamodules.samples import DataInfo, normaliser
from zoo.datamodules.transforms import light, seed_augment
from zoo.io.images import IMAGE_SUFFIXES, check_image, read_image
from zoo.io.keypoint_csv import read_keypoint_csv

LAYOUTS = ("folders", "regex", "list")
FRACTION_MODES = ("images", "identities")
BAD_SAMPLE_MODES = ("error", "skip")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class IdentityRecord:
    path: Path
    identity: str
    box: np.ndarray | None = None  # float64 [4] x_min, y_min, x_max, y_max (source pixels) or None
    points: np.ndarray | None = None  # float64 [5, 2] alignment points (crop: aligned) or None


def resolve_path(p: str | os.PathLike) -> Path:
    """``p`` as given if it exists or is absolute, else relative to the repository root (configs use
    ``../shared/data/...``); user paths ``~`` are expanded."""
    path = Path(os.path.expanduser(str(p)))
    if path.is_absolute() or path.exists():
        return path
    alt = REPO_ROOT / path
    return alt if alt.exists() else path


class _Skips:
    """Tally of skipped inputs (on_bad_sample: skip), reported as one warning per kind."""

    def __init__(self, mode: str, where: str) -> None:
        self.mode, self.where, self.items = mode, where, {}

    def bad(self, kind: str, message: str, error: type[Exception] = ValueError) -> None:
        if self.mode == "error":
            raise error(f"{message} (data.on_bad_sample=skip skips such inputs with a warning and a count)")
        self.items.setdefault(kind, []).append(message)

    def report(self) -> None:
        for kind, msgs in self.items.items():
            warnings.warn(f"{self.where}: skipped {len(msgs)} {kind} (on_bad_sample=skip), e.g. {msgs[0]}", stacklevel=3)


def _images_in(folder: Path, recursive: bool, suffixes: Sequence[str]) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.suffix.lower() in suffixes and p.is_file())


def scan_folders(root: Path, suffixes: Sequence[str], skips: _Skips) -> list[IdentityRecord]:
    """``root/<identity>/**/<image>``: one identity per sub-folder."""
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = _images_in(d, True, suffixes)
        if not files:
            skips.bad("identity folders without images",
                      f"{d}: identity folder holds no images (suffixes {', '.join(suffixes)})")
        out += [IdentityRecord(f, d.name) for f in files]
    loose = _images_in(root, False, suffixes)
    if loose:
        warnings.warn(f"{root}: {len(loose)} images lie directly in the root, outside any identity folder, and are "
                      f"not used (layout=folders expects root/<identity>/<image>; e.g. {loose[0].name})", stacklevel=3)
    return out


def scan_regex(root: Path, name_regex: str, recursive: bool, suffixes: Sequence[str], skips: _Skips) -> list[IdentityRecord]:
    """Images in ``root`` whose stem matches ``name_regex``; the identity is its ``identity`` group (or group 1)."""
    try:
        rx = re.compile(name_regex)
    except re.error as e:
        raise ValueError(f"data.name_regex {name_regex!r} is not a valid regular expression: {e}") from None
    if "identity" not in rx.groupindex and rx.groups < 1:
        raise ValueError(f"data.name_regex {name_regex!r} needs a group for the identity: (?P<identity>...) or (...)")
    out = []
    for f in _images_in(root, recursive, suffixes):
        m = rx.search(f.stem)
        ident = (m.group("identity") if "identity" in rx.groupindex else m.group(1)) if m else None
        if not ident:
            skips.bad("files whose name does not match data.name_regex",
                      f"{f}: file name {f.stem!r} does not match data.name_regex {name_regex!r}")
            continue
        out.append(IdentityRecord(f, ident))
    return out


def _column(header: list[str] | None, col: str | int, list_file: Path, key: str) -> int:
    if isinstance(col, int):
        return col
    if header is None:
        raise ValueError(f"data.{key}={col!r} is a column name but data.header is false; give a 0-based index")
    names = [h.strip() for h in header]
    if col not in names:
        raise ValueError(f"{list_file}: data.{key}={col!r} is not a column of the header {names}")
    return names.index(col)


def scan_list(list_file: Path, root: Path, path_column: str | int, identity_column: str | int, delimiter: str | None,
              header: bool, box_columns: Sequence[str | int] | None, box_format: str, skips: _Skips) -> list[IdentityRecord]:
    """Rows of a CSV / whitespace list: path (relative to ``root``), identity, optional box."""
    if not list_file.is_file():
        raise FileNotFoundError(f"data.list_file {list_file} does not exist")
    with open(list_file, newline="", encoding="utf-8-sig") as fh:
        if delimiter is None:  # whitespace separated
            rows = [(i + 1, ln.split()) for i, ln in enumerate(fh)]
        else:
            rows = [(i + 1, r) for i, r in enumerate(csv.reader(fh, delimiter=delimiter))]
    rows = [(i, r) for i, r in rows if any(c.strip() for c in r)]
    head = rows.pop(0)[1] if header and rows else None
    pc = _column(head, path_column, list_file, "path_column")
    ic = _column(head, identity_column, list_file, "identity_column")
    bc = [_column(head, c, list_file, "box_columns") for c in box_columns] if box_columns else []
    if bc and len(bc) != 4:
        raise ValueError(f"data.box_columns must name 4 columns ({box_format}), got {list(box_columns)}")
    out = []
    for line, r in rows:
        need = max([pc, ic] + bc)
        if len(r) <= need:
            skips.bad("malformed list rows", f"{list_file}:{line}: {len(r)} fields, column {need} needed")
            continue
        f = Path(r[pc].strip())
        f = f if f.is_absolute() else root / f
        if not f.is_file():
            skips.bad("list rows naming missing files", f"{list_file}:{line}: image {f} does not exist", FileNotFoundError)
            continue
        box = None
        if bc:
            try:
                b = np.asarray([float(r[c]) for c in bc], dtype=np.float64)
            except ValueError:
                skips.bad("malformed list rows", f"{list_file}:{line}: box columns {bc} are not numbers: {[r[c] for c in bc]}")
                continue
            # xywh: top-left pixel x, y and size w, h in pixels -> edges [x - .5, x + w - .5] (pixel-centre coords)
            box = b if box_format == "xyxy" else np.r_[b[:2] - 0.5, b[:2] + b[2:] - 0.5]
            if not (np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]):
                skips.bad("malformed list rows", f"{list_file}:{line}: empty or invalid box {b.tolist()} ({box_format})")
                continue
        out.append(IdentityRecord(f, r[ic].strip(), box))
    return out


def attach_keypoint_boxes(records: list[IdentityRecord], keypoints_file: Path, root: Path, skips: _Skips) -> list[IdentityRecord]:
    """Set each record's box to the bounding box of its keypoints (CSV rows matched by path, then by file name)."""
    errors: list[tuple[str, str]] | None = [] if skips.mode == "skip" else None
    kp = read_keypoint_csv(keypoints_file, image_root=root, errors=errors)
    for origin, msg in errors or []:
        skips.bad("keypoint rows", msg)
    by_path = {r.image.resolve(): r.landmarks for r in kp}
    by_name = {r.image.name: r.landmarks for r in kp}
    out = []
    for rec in records:
        pts = by_path.get(rec.path.resolve())
        if pts is None:
            pts = by_name.get(rec.path.name)
        if pts is None:
            skips.bad("images without keypoints", f"{rec.path}: no row in data.keypoints_file {keypoints_file} "
                                                  f"(crop: keypoints and crop: aligned need one per image)")
            continue
        rec.box = np.r_[pts.min(0), pts.max(0)].astype(np.float64)
        if len(pts) in (5, 68):
            rec.points = five_points(pts)
        out.append(rec)
    return out


def split_identities(names: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, list[str]]:
    """Deal sorted identity names, permuted by ``default_rng(seed)``, to the splits of ``fractions`` (in order),
    the rest to ``train``; a split with fraction > 0 gets max(2, round(f · N)) identities."""
    names = sorted(set(names))
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    out: dict[str, list[str]] = {}
    start = 0
    for split, f in fractions.items():
        check_number(f"data.{split}_fraction", f, low=0, high=1, low_inclusive=True)
        n = 0 if f == 0 else max(2, int(round(f * len(names))))
        out[split] = sorted(order[start:start + n])
        start += n
    out["train"] = sorted(order[start:])
    if not out["train"]:
        raise ValueError(f"identity split leaves no training identity: {len(names)} identities, fractions "
                         f"{dict(fractions)} (each split with fraction > 0 takes at least 2)")
    return out


def train_fraction_subset(records: list[IdentityRecord], fraction: float, mode: str, seed: int) -> list[IdentityRecord]:
    """Nested seeded subset of the training records (module docstring)."""
    check_fraction("data.train_fraction", fraction)
    check_choice("data.fraction_mode", mode, FRACTION_MODES)
    if fraction == 1:
        return records
    groups: dict[str, list[IdentityRecord]] = {}
    for r in records:
        groups.setdefault(r.identity, []).append(r)
    names = sorted(groups)
    if mode == "identities":
        k = max(1, int(np.ceil(fraction * len(names))))
        keep = set(names[i] for i in np.random.default_rng([seed, 2]).permutation(len(names))[:k])
        return [r for r in records if r.identity in keep]
    out = []
    for j, name in enumerate(names):
        g = sorted(groups[name], key=lambda r: str(r.path))
        k = min(len(g), max(2, int(np.ceil(fraction * len(g)))))
        perm = np.random.default_rng([seed, 3, j]).permutation(len(g))[:k]
        out += [g[i] for i in sorted(perm)]
    return out


def build_augment(augment: Any) -> Any:
    """None/False -> None; a recipe object (``sample_geometry``/``photometric``/``reseed``) as is; a dict -> light(**)."""
    if augment is None or augment is False:
        return None
    if hasattr(augment, "sample_geometry") and hasattr(augment, "photometric"):
        return augment
    if isinstance(augment, Mapping):
        return light(**dict(augment))  # unknown or out-of-range keys: ValueError naming augment.<key>
    raise ValueError(f"data.augment must be null, a recipe from configs/augment or a dict of "
                     f"zoo.datamodules.transforms.light arguments, got {type(augment).__name__}")


class IdentityDataset(Dataset):
    """Face crops with identity labels (sample contract ``image``, ``identity``, ``index``); see module docstring."""

    def __init__(self, records: Sequence[IdentityRecord], identity_names: Sequence[str] | None = None,
                 image_size: int = 96, channels: int = 3, crop: str = "full", crop_scale: float = 1.25,
                 augment: Any = None, mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5,
                 on_bad_sample: str = "error", name: str = "identities") -> None:
        if not records:
            raise ValueError(f"{name}: empty identity dataset (no images)")
        check_choice("data.channels", channels, (1, 3))
        check_choice("data.crop", crop, CROPS)
        check_choice("data.on_bad_sample", on_bad_sample, BAD_SAMPLE_MODES)
        check_int("data.image_size", image_size, low=8)
        self.name = name
        self.files = [r.path for r in records]
        self.boxes = [r.box for r in records]
        if crop != "full" and any(b is None for b in self.boxes):
            raise ValueError(f"{name}: crop={crop!r} but some records have no box/keypoints")
        self.points = [r.points for r in records]
        if crop == "aligned" and any(p is None for p in self.points):
            bad = next(r.path for r in records if r.points is None)
            raise ValueError(f"{name}: crop='aligned' needs 68 (iBUG) or 5 keypoints per image in data.keypoints_file; "
                             f"{bad} has none or another number")
        self.identity_names = list(identity_names) if identity_names is not None else sorted({r.identity for r in records})
        lookup = {n: i for i, n in enumerate(self.identity_names)}
        self.identities = np.asarray([lookup[r.identity] for r in records], dtype=np.int64)
        self.image_size, self.channels, self.crop, self.crop_scale = image_size, channels, crop, float(crop_scale)
        self.augment = build_augment(augment)
        self.mean, self.std = normaliser(mean, std, channels)
        self.on_bad_sample = on_bad_sample
        self.bad_files: set[str] = set()

    @property
    def num_identities(self) -> int:
        return len(self.identity_names)

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        """(index actually read, image): on_bad_sample=skip replaces an unreadable file by the next readable
        image of the same identity."""
        try:
            return index, read_image(self.files[index], grayscale=self.channels == 1)
        except (ValueError, FileNotFoundError) as e:
            if self.on_bad_sample == "error":
                raise ValueError(f"{e} (sample {index} of {self.name}; set data.on_bad_sample=skip to replace "
                                 f"unreadable images by another image of the same identity)") from None
            self.bad_files.add(str(self.files[index]))
            warnings.warn(f"{self.name}: unreadable image {self.files[index]} replaced by another image of identity "
                          f"{self.identity_names[self.identities[index]]!r} ({len(self.bad_files)} bad file(s) so far "
                          f"in this process): {e}", stacklevel=3)
        same = np.flatnonzero(self.identities == self.identities[index])
        for j in np.roll(same, -int(np.searchsorted(same, index)) - 1):
            if str(self.files[j]) in self.bad_files:
                continue
            try:
                return int(j), read_image(self.files[j], grayscale=self.channels == 1)
            except (ValueError, FileNotFoundError):
                self.bad_files.add(str(self.files[j]))
        raise ValueError(f"{self.name}: no readable image of identity "
                         f"{self.identity_names[self.identities[index]]!r} (e.g. {self.files[index]})")

    def _geometry(self, index: Any = None) -> CropGeometry:
        if self.augment is None:
            return CropGeometry()
        seed_augment(self.augment, index)  # per draw (zoo samplers) or once per process
        return self.augment.sample_geometry()

    def crop_image(self, index: int, geometry: CropGeometry = CropGeometry()) -> np.ndarray:
        """uint8 crop [S, S] or [S, S, 3] of sample ``index`` (no photometric augmentation)."""
        j, img = self._read(index)
        if self.crop == "aligned":
            return warp_crop(img, align_matrix(self.points[j], self.image_size, geometry), self.image_size, "area")
        if self.crop == "full":
            h, w = img.shape[:2]
            cx, cy, side = (w - 1) / 2, (h - 1) / 2, float(max(h, w))
        else:
            cx, cy, side = face_square(np.zeros((0, 2)), self.boxes[j], self.crop_scale)
        m = crop_matrix((cx, cy), side, self.image_size, geometry)
        return warp_crop(img, m, self.image_size, "area")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        geometry = self._geometry(index)
        index = int(index)
        crop = self.crop_image(index, geometry)
        if self.augment is not None:
            crop, _ = self.augment.photometric(crop, np.zeros((0, 2), dtype=np.float32))
        img = torch.from_numpy(np.ascontiguousarray(crop)).float().div_(255.0)
        img = img[None] if img.dim() == 2 else img.permute(2, 0, 1)
        img = (img - self.mean) / self.std
        return {"image": img.contiguous(),
                "identity": torch.tensor(int(self.identities[index]), dtype=torch.int64),
                "index": torch.tensor(index, dtype=torch.int64)}


class IdentityDataModule(VerificationPairs, FaceDataModule):
    """Identity splits of one (or up to three) face image sources; see the module docstring for every option.

    ``pairs(split)`` gives the split's verification pairs ``[(i, j, same)]`` (indices into that split's
    dataset): read from ``pairs_files[split]`` (LFW pairs.txt, names mapped to files by ``pair_pattern``
    relative to the split's root) when given, else ``num_pairs`` balanced pairs generated with ``split_seed``
    (:mod:`zoo.metrics.pairs`); ``pairs(split, with_folds=True)`` adds the LFW fold of each pair.
    """

    def __init__(self, root: str | None = None, layout: str = "folders", name_regex: str = r"^(?P<identity>.+)_\d+$",
                 recursive: bool = False, list_file: str | None = None, path_column: str | int = "path",
                 identity_column: str | int = "identity", delimiter: str | None = ",", header: bool = True,
                 box_columns: Sequence[str | int] | None = None, box_format: str = "xywh",
                 keypoints_file: str | None = None, extensions: Sequence[str] = IMAGE_SUFFIXES,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, val_root: str | None = None,
                 test_root: str | None = None, split_seed: int = 0, train_fraction: float = 1.0,
                 fraction_mode: str = "images", min_images_per_identity: int = 1, image_size: int = 96,
                 channels: int = 3, crop: str = "full", crop_scale: float = 1.25, augment: Any = None,
                 mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5,
                 pairs_files: Mapping[str, str] | None = None, pair_pattern: str = "{name}/{name}_{num:04d}.jpg",
                 num_pairs: int = 6000, pair_folds: int = 10, on_bad_sample: str = "error",
                 verify_images: bool = False, data_dir: str | None = None, evaluate_all: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_bool("data.evaluate_all", evaluate_all)
        if root is None and data_dir is None:
            raise invalid("data.data_dir", None, "no image folder given (data.root and data.data_dir are both null)",
                          "data.data_dir=/path/to/faces (root/<identity>/<image>), or data.root")
        if data_dir is not None:  # relative paths of the other keys are taken under data_dir
            under = lambda p: None if p is None else str(Path(os.path.expanduser(str(data_dir))) / os.path.expanduser(str(p)))  # noqa: E731
            root = under(root if root is not None else ".")
            list_file, keypoints_file, val_root, test_root = map(under, (list_file, keypoints_file, val_root, test_root))
            pairs_files = {k: under(v) for k, v in dict(pairs_files or {}).items()}
        check_choice("data.layout", layout, LAYOUTS)
        check_choice("data.crop", crop, CROPS)
        check_choice("data.box_format", box_format, ("xywh", "xyxy"))
        check_choice("data.on_bad_sample", on_bad_sample, BAD_SAMPLE_MODES)
        check_choice("data.fraction_mode", fraction_mode, FRACTION_MODES)
        check_int("data.min_images_per_identity", min_images_per_identity)
        if crop in ("keypoints", "aligned") and not keypoints_file:
            raise invalid("data.keypoints_file", keypoints_file, f"data.crop={crop} needs it",
                          "a keypoint CSV (filename,x0,y0,...)")
        if crop == "box" and not (layout == "list" and box_columns):
            raise invalid("data.crop", crop, "needs data.layout=list with data.box_columns",
                          "data.layout=list with 4 data.box_columns, or another data.crop")
        if layout == "list" and not list_file:
            raise invalid("data.list_file", list_file, "data.layout=list needs it", "a CSV / text file of images")
        pairs_files = dict(pairs_files or {})
        for split in pairs_files:
            check_choice("data.pairs_files", split, SPLITS)
        self.root = root
        self.layout, self.name_regex, self.recursive = layout, name_regex, recursive
        self.list_file, self.path_column, self.identity_column = list_file, path_column, identity_column
        self.delimiter, self.header, self.box_columns, self.box_format = delimiter, header, box_columns, box_format
        self.keypoints_file = keypoints_file
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)
        self.split_roots = {"val": val_root, "test": test_root}
        self.split_seed, self.train_fraction, self.fraction_mode = split_seed, train_fraction, fraction_mode
        self.min_images_per_identity = min_images_per_identity
        self.image_size, self.channels, self.crop, self.crop_scale = image_size, channels, crop, crop_scale
        self.augment, self.mean, self.std = augment, mean, std
        self.pairs_files, self.pair_pattern = pairs_files, pair_pattern
        self.num_pairs, self.pair_folds = num_pairs, pair_folds
        self.on_bad_sample, self.verify_images = on_bad_sample, verify_images
        self.data_dir, self.evaluate_all, self.test_only = data_dir, evaluate_all, False
        self.roots: dict[str, Path] = {}

    def prepare_evaluation(self) -> None:
        """Called by evaluate.py for a ``data=`` config given on its command line: with ``evaluate_all`` (the
        ``data=identity_folder`` default) every identity of ``root`` becomes a test identity (no train/val split;
        pairs generated among all of them, or read from ``pairs_files.test``)."""
        if self.evaluate_all and not self.test_only:
            self.test_only, self.datasets = True, {}

    # ---- indexing ----------------------------------------------------------------------------------------------
    def scan(self, root: str | os.PathLike, min_images: int = 1) -> list[IdentityRecord]:
        """All usable records of one source (layout, keypoints, image check, identities with >= min_images)."""
        path = resolve_path(root)
        if not path.is_dir():
            raise FileNotFoundError(f"data.root {path} is not a folder (given {root!r})")
        skips = _Skips(self.on_bad_sample, str(path))
        if self.layout == "folders":
            recs = scan_folders(path, self.extensions, skips)
        elif self.layout == "regex":
            recs = scan_regex(path, self.name_regex, self.recursive, self.extensions, skips)
        else:
            recs = scan_list(resolve_path(self.list_file), path, self.path_column, self.identity_column,
                             self.delimiter, self.header, self.box_columns, self.box_format, skips)
        if self.crop in ("keypoints", "aligned"):
            recs = attach_keypoint_boxes(recs, resolve_path(self.keypoints_file), path, skips)
        if self.verify_images:
            ok = []
            for r in recs:
                try:
                    check_image(r.path)
                    ok.append(r)
                except (ValueError, FileNotFoundError) as e:
                    skips.bad("unreadable images", str(e))
            recs = ok
        skips.report()
        if not recs:
            raise ValueError(f"{path}: no images found (layout={self.layout}, suffixes {', '.join(self.extensions)})")
        if min_images > 1:
            counts: dict[str, int] = {}
            for r in recs:
                counts[r.identity] = counts.get(r.identity, 0) + 1
            few = {n for n, c in counts.items() if c < min_images}
            if few:
                warnings.warn(f"{path}: dropped {len(few)} identities ({sum(counts[n] for n in few)} images) with fewer "
                              f"than data.min_images_per_identity={min_images} images, e.g. "
                              f"{sorted(few)[:3]}", stacklevel=2)
                recs = [r for r in recs if r.identity not in few]
            if not recs:
                raise ValueError(f"{path}: no identity has data.min_images_per_identity={min_images} images")
        return recs

    def build_datasets(self) -> dict[str, Dataset | None]:
        records = self.scan(self.root, self.min_images_per_identity)  # val_root/test_root are not filtered
        main_root = resolve_path(self.root)
        if self.test_only:
            return self._test_set(records, main_root)
        fractions = {s: (0.0 if self.split_roots[s] else f)
                     for s, f in (("test", self.test_fraction), ("val", self.val_fraction))}
        names = split_identities([r.identity for r in records], fractions, self.split_seed)
        by_split: dict[str, list[IdentityRecord]] = {s: [] for s in SPLITS}
        where = {n: s for s, ns in names.items() for n in ns}
        for r in records:
            by_split[where[r.identity]].append(r)
        self.roots = {"train": main_root}
        for s in ("val", "test"):
            if self.split_roots[s]:
                by_split[s] = self.scan(self.split_roots[s])
                self.roots[s] = resolve_path(self.split_roots[s])
                overlap = {r.identity for r in by_split[s]} & set(names["train"])
                if overlap:
                    warnings.warn(f"data.{s}_root shares {len(overlap)} identity names with the training data, e.g. "
                                  f"{sorted(overlap)[:3]} (different people with equal names, or a leak)", stacklevel=2)
            else:
                self.roots[s] = main_root
        by_split["train"] = train_fraction_subset(by_split["train"], self.train_fraction, self.fraction_mode,
                                                  self.split_seed)
        out: dict[str, Dataset | None] = {}
        for s in SPLITS:
            recs = by_split[s]
            if not recs:
                out[s] = None
                continue
            out[s] = IdentityDataset(recs, None, self.image_size, self.channels, self.crop, self.crop_scale,
                                     self.augment if s == "train" else None, self.mean, self.std,
                                     self.on_bad_sample, name=f"{main_root.name}/{s}")
        for s in self.pairs_files:
            if out.get(s) is None:
                raise ValueError(f"data.pairs_files names split {s!r} but that split is empty (its fraction is 0 and "
                                 f"no data.{s}_root is set)")
        return out

    def _test_set(self, records: list[IdentityRecord], root: Path) -> dict[str, Dataset | None]:
        """Every record of ``root`` as the test split (:meth:`prepare_evaluation`)."""
        names = sorted({r.identity for r in records})
        if len(names) < 2:
            raise invalid("data.data_dir" if self.data_dir is not None else "data.root", str(root),
                          f"holds {len(names)} identity ({', '.join(names)}); verification needs impostor pairs",
                          "a folder with at least 2 identities (root/<identity>/<image>)")
        self.roots = {s: root for s in SPLITS}
        for s in self.pairs_files:
            if s != "test":
                raise invalid("data.pairs_files", dict(self.pairs_files), f"names split {s!r}, but evaluate.py makes "
                              f"every identity of {root} a test identity (data.evaluate_all)", "{test: <pairs file>}")
        test = IdentityDataset(records, None, self.image_size, self.channels, self.crop, self.crop_scale, None,
                               self.mean, self.std, self.on_bad_sample, name=f"{root.name}/test")
        print(f"[zoo] evaluating all {len(names)} identities ({len(records)} images) of {root} as the test set")
        return {"train": None, "val": None, "test": test}

    def data_info(self) -> DataInfo:
        train = self.datasets.get("train")
        return DataInfo(task="identities", image_size=self.image_size, channels=self.channels,
                        num_identities=train.num_identities if train is not None else None,
                        sizes={s: len(d) for s, d in self.datasets.items() if d is not None})

    # ---- verification pairs (VerificationPairs.pairs) -------------------------------------------------------
    def make_pairs(self, split: str, dataset: Any) -> list[tuple[int, int, bool, int]]:
        if split in self.pairs_files:
            return pairs_from_file(dataset, resolve_path(self.pairs_files[split]), self.roots[split],
                                   self.pair_pattern, split)
        return generated_pairs(dataset, self.num_pairs, self.pair_folds, self.split_seed)
