"""Landmark datasets on annotation records (300-W folders, keypoint CSV, WFLW) and their deterministic splits.

:class:`LandmarkDataset` turns a :class:`~zoo.io.records.LandmarkRecord` into a sample of the landmark
contract (zoo.datamodules.samples): the face square (given box or landmark box, enlarged by ``crop_scale``)
is warped to ``image_size`` pixels by one affine warp that also carries the geometric augmentation
(zoo.datamodules.crop), then the recipe's photometric transforms run on the uint8 crop.

Image values: ``image = (x / 255 - mean) / std`` with x the uint8 crop; the default ``mean=0, std=1`` gives
[0, 1] (the seed-002 net starts with batch norm, so no further scaling is needed; set ImageNet mean/std for
pretrained timm backbones).
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Sequence

import numpy as np
import torch

from zoo.checks import check_fraction, invalid
from torch.utils.data import Dataset

from zoo.datamodules.crop import CropGeometry, crop_matrix, face_square, matrix_scale, protocol_norm, transform_points, warp_crop
from zoo.datamodules.samples import normaliser
from zoo.datamodules.transforms import LandmarkAugment, seed_augment
from zoo.io.images import read_image
from zoo.io.records import LandmarkRecord, check_in_image
from zoo.schemes import Scheme

_FACE_SUFFIX = re.compile(r"_\d+$")
SPLITS = ("train", "val", "test")


class LandmarkDataset(Dataset):
    """Face crops with landmarks in crop pixels (0-based, pixel-centre), one sample per record.

    Sample keys: ``image`` float32 [C, S, S]; ``landmarks`` float32 [L, 2]; ``visible`` bool [L] (all True: the
    supported formats label every point, and points moved outside the crop by augmentation stay labelled);
    ``norm`` float32 (the ``norm`` protocol distance of the face, in crop pixels: source distance times the
    warp's scale, so rotation and shift leave it unchanged); ``index`` int64 (position in this dataset);
    ``subset``: int64 [A] attribute flags when the records carry them (WFLW, names in ``attribute_names``),
    else the int64 id of the record's source (root folder or annotation file) in ``source_names``;
    ``attributes`` bool [A] with flags. The datamodule's ``DataInfo.subset_names`` names either.
    """

    def __init__(self, records: Sequence[LandmarkRecord], scheme: Scheme, image_size: int = 96, crop_scale: float = 1.25,
                 grayscale: bool = True, norm: str = "inter_ocular", augment: LandmarkAugment | None = None,
                 mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0, interpolation: str = "area",
                 attribute_names: Sequence[str] | None = None, source_names: Sequence[str] | None = None) -> None:
        self.records = list(records)
        self.scheme = scheme
        self.image_size = int(image_size)
        self.crop_scale = float(crop_scale)
        self.grayscale = bool(grayscale)
        self.norm = norm
        self.augment = augment
        self.interpolation = interpolation
        self.channels = 1 if grayscale else 3
        self.mean, self.std = normaliser(mean, std, self.channels)
        with_attr = [r.attributes is not None for r in self.records]
        if any(with_attr) and not all(with_attr):
            raise ValueError("records mix sources with and without attribute flags (e.g. WFLW with 300-W); "
                             "cannot collate their 'subset' tags")
        self.has_attributes = bool(with_attr) and all(with_attr)
        self.attribute_names = tuple(attribute_names or ())
        # subset id of each record's source (root folder / annotation file), shared by every split
        self.source_names = tuple(source_names) if source_names is not None else \
            tuple(sorted({r.source for r in self.records}))
        self._source_id = {name: i for i, name in enumerate(self.source_names)}
        unknown = sorted({r.source for r in self.records} - set(self._source_id))
        if unknown:
            raise ValueError(f"record sources {unknown} are missing from source_names {list(self.source_names)}")
        self.perm = np.asarray(scheme.flip_permutation)

    def __len__(self) -> int:
        return len(self.records)

    def without_augmentation(self) -> "LandmarkDataset":
        """The same records and indices with evaluation crops (e.g. to refresh every training loss, LPBB 'BB')."""
        clone = copy.copy(self)
        clone.augment = None
        return clone

    def geometry(self, index: Any = None) -> CropGeometry:
        """The augmentation geometry of sample ``index`` (reseeded per draw, see transforms.seed_augment)."""
        if self.augment is None:
            return CropGeometry()
        seed_augment(self.augment, index)
        return self.augment.sample_geometry()

    def crop(self, index: int, geometry: CropGeometry = CropGeometry()) -> tuple[np.ndarray, np.ndarray, float]:
        """(uint8 crop, landmarks [L, 2] in crop pixels, norm in crop pixels) of record ``index``; no photometry."""
        rec = self.records[index]
        try:
            img = read_image(rec.image, grayscale=self.grayscale)
        except ValueError as e:
            raise ValueError(f"{e} (sample {index}, annotation {rec.origin})") from None
        check_in_image(rec.landmarks, img.shape[1], img.shape[0], rec.origin, rec.image)
        cx, cy, side = face_square(rec.landmarks, rec.box, self.crop_scale)
        m = crop_matrix((cx, cy), side, self.image_size, geometry)
        crop = warp_crop(img, m, self.image_size, self.interpolation)
        pts = transform_points(m, rec.landmarks)
        if geometry.flip:  # the matrix mirrored x; point i must keep its meaning (left eye stays left eye)
            pts = pts[self.perm]
        norm = protocol_norm(rec.landmarks, self.scheme, self.norm, rec.box) * matrix_scale(m)
        return crop, pts, norm

    def __getitem__(self, index: int) -> dict[str, Any]:
        geometry = self.geometry(index)
        index = int(index)
        rec = self.records[index]
        crop, pts, norm = self.crop(index, geometry)
        if self.augment is not None:
            crop, pts = self.augment.photometric(crop, pts)
        img = torch.from_numpy(np.ascontiguousarray(crop)).float().div_(255.0)
        img = img[None] if img.dim() == 2 else img.permute(2, 0, 1)
        img = (img - self.mean) / self.std
        sample: dict[str, Any] = {
            "image": img.contiguous(),
            "landmarks": torch.from_numpy(np.ascontiguousarray(pts, dtype=np.float32)),
            "visible": torch.ones(len(pts), dtype=torch.bool),
            "norm": torch.tensor(norm, dtype=torch.float32),
            "index": torch.tensor(index, dtype=torch.int64),
        }
        if self.has_attributes:
            sample["subset"] = torch.as_tensor(rec.attributes, dtype=torch.int64)
            sample["attributes"] = sample["subset"].bool()
        else:
            sample["subset"] = torch.tensor(self._source_id[rec.source], dtype=torch.int64)
        return sample


# ---- splits ----------------------------------------------------------------------------------------------------
SPLIT_BY = ("image", "group", "sample")


def group_of(record: LandmarkRecord, split_by: str) -> str:
    """Split unit of a record, so related faces never straddle train/val/test.

    ``sample``: each record alone. ``image``: the image file (several faces annotated in one photo, e.g. the
    original 300-W AFW layout or WFLW). ``group``: the image path without extension and trailing ``_<n>``
    (``111076519_1.jpg`` / ``111076519_2.jpg`` crops of one photo; YouTube-Faces ``name_07`` frames of one
    person). Beware: ``group`` merges LFPW's ``image_0001.png`` ... into one group; use ``image`` there.
    """
    if split_by == "sample":
        return record.key
    if split_by == "image":
        return str(record.image)
    if split_by == "group":
        return _FACE_SUFFIX.sub("", str(record.image.with_suffix("")))
    raise invalid("data.split_by", split_by, "unknown choice", f"one of {', '.join(map(repr, SPLIT_BY))}")


def fraction_split(records: Sequence[LandmarkRecord], fractions: dict[str, float], seed: int,
                   split_by: str = "group") -> dict[str, list[LandmarkRecord]]:
    """Seeded split of ``records`` into the named parts of ``fractions`` plus ``"rest"``.

    Groups (:func:`group_of`) are sorted, shuffled with ``numpy.random.default_rng(seed)`` and dealt in that
    order: a group goes to the first part (in ``fractions`` order) whose target round(fraction · N) it brings
    closer, else to ``"rest"``. Deterministic for a given record set, seed and fractions, independent of
    file-system order; part sizes match the targets up to one group.
    """
    groups: dict[str, list[LandmarkRecord]] = {}
    for r in sorted(records, key=lambda r: r.key):
        groups.setdefault(group_of(r, split_by), []).append(r)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    n = len(records)
    out: dict[str, list[LandmarkRecord]] = {k: [] for k in list(fractions) + ["rest"]}
    want = {k: int(round(f * n)) for k, f in fractions.items()}
    for gi in order:
        g = groups[names[gi]]
        part = next((k for k in want if abs(len(out[k]) + len(g) - want[k]) < abs(len(out[k]) - want[k])), "rest")
        out[part].extend(g)
    return {k: sorted(v, key=lambda r: r.key) for k, v in out.items()}


def train_subset(records: Sequence[LandmarkRecord], fraction: float, seed: int) -> list[LandmarkRecord]:
    """The first ceil(fraction · N) records of a seeded permutation (nested: 10 % ⊂ 25 % ⊂ 50 % for one seed)."""
    check_fraction("data.train_fraction", fraction)
    recs = sorted(records, key=lambda r: r.key)
    if fraction == 1:
        return recs
    k = max(1, int(np.ceil(fraction * len(recs))))
    keep = np.sort(np.random.default_rng([seed, 1]).permutation(len(recs))[:k])
    return [recs[i] for i in keep]
