"""Verification pair sets of an identity split: from an LFW pairs.txt, or generated (seeded, balanced).

Pairs are ``(i, j, same, fold)`` with i, j indices into the split's dataset (the samples' ``index``).
The generator and the fold rule live in :mod:`zoo.metrics.pairs` (shared with the metrics, which cannot
import datamodules); this module adds the mapping from a pairs file's names to a dataset's files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.checks import check_choice
from zoo.datamodules.samplers.pk import dataset_identities
from zoo.io.lfw_pairs import pair_paths, read_lfw_pairs
from zoo.metrics.pairs import generate_pairs, assign_folds

Pair4 = tuple[int, int, bool, int]
SPLITS = ("train", "val", "test")


class VerificationPairs:
    """``pairs(split)`` of an identity datamodule (mixin): the split's verification pairs ``[(i, j, same)]``
    (indices into ``self.datasets[split]``), ``with_folds=True`` adds each pair's fold; computed once per split
    by the datamodule's :meth:`make_pairs` and cached."""

    def make_pairs(self, split: str, dataset: Any) -> list[Pair4]:  # pragma: no cover - abstract
        raise NotImplementedError

    def empty_split_hint(self, split: str) -> str:
        return f"data.{split}_fraction is 0 and no data.{split}_root"

    def pairs(self, split: str = "val", with_folds: bool = False) -> list[tuple]:
        check_choice("split", split, SPLITS)
        self.setup()
        ds = self.datasets.get(split)
        if ds is None:
            raise ValueError(f"split {split!r} is empty ({self.empty_split_hint(split)}); no verification pairs")
        cache = self.__dict__.setdefault("_pairs", {})
        if split not in cache:
            cache[split] = self.make_pairs(split, ds)
        p = cache[split]
        return list(p) if with_folds else [(i, j, s) for i, j, s, _ in p]


def pairs_from_file(dataset: Any, pairs_file: str | Path, root: str | Path,
                    pattern: str = "{name}/{name}_{num:04d}.jpg", split: str = "split") -> list[Pair4]:
    """Read an LFW pairs file and map its files to ``dataset.files`` indices.

    FileNotFoundError (pairs-file line + file) when a named file does not exist; ValueError when it exists but
    is not in this split's dataset (e.g. its identity was put in another split or skipped as unreadable).
    """
    records = read_lfw_pairs(pairs_file)
    files = getattr(dataset, "files", None)
    if files is None:
        raise ValueError(f"{type(dataset).__name__} has no 'files' attribute; pair files need the dataset's file list")
    where = {Path(f).resolve(): i for i, f in enumerate(files)}
    out: list[Pair4] = []
    for rec, (fa, fb, same) in zip(records, pair_paths(records, root, pattern, pairs_file)):
        idx = []
        for f in (fa, fb):
            i = where.get(f.resolve())
            if i is None:
                raise ValueError(f"{pairs_file}:{rec.line}: {f} exists but is not part of the {split!r} split "
                                 f"({len(files)} images): its identity is in another split, or the file was skipped")
            idx.append(i)
        out.append((idx[0], idx[1], bool(same), rec.fold))
    return out


def generated_pairs(dataset: Any, num_pairs: int = 6000, folds: int = 10, seed: int = 0) -> list[Pair4]:
    """Balanced genuine/impostor pairs of ``dataset.identities`` (see :func:`zoo.metrics.pairs.generate_pairs`)."""
    pairs = generate_pairs(dataset_identities(dataset), num_pairs=num_pairs, seed=seed, folds=folds)
    fold = assign_folds([p[2] for p in pairs], folds)
    return [(i, j, s, int(f)) for (i, j, s), f in zip(pairs, fold)]
