"""Render an on-the-fly evaluation split once, keep it in memory and on disk (keyed on everything that shapes it).

On-the-fly data (the 3DMM-synthetic faces) would otherwise render its fixed validation/test images again at every
validation epoch and in every run. :func:`cached_split` turns such a split into a :class:`CachedDataset` (one
stacked tensor per sample key, samples equal to the fresh ones bit for bit):

* **memory**: rendered once per process (DataLoader workers in parallel), then served from RAM, so every later
  validation epoch costs only the forward passes;
* **disk** (default of ``data=synthetic_3dmm*``): also written to ``<cache_dir>/<name>-<key>.pt`` and read by the
  next run with the same configuration. Disk, because the issue is the re-rendering *across* runs (a 500-image
  val set of ``data=synthetic_3dmm_identities`` takes ~5 s of two busy cores, reading it back ~0.1 s).
  The key is the SHA-256 of a JSON description of the split — every generator and datamodule setting, the seed,
  the stream, the sizes, a fingerprint (size, mtime) of every file the configuration names (model, mapping,
  light prior, background folder) and of the rendering source code (``zoo/synth/*.py`` and the dataset module),
  plus the numpy/numba/torch versions — so a changed setting, file or renderer never reuses a stale cache.
  The file also stores the description (:func:`zoo.datamodules.disk_cache.cached`, shared with the GAN-augmented
  data): a digest mismatch or an unreadable file is rendered again, with a log line naming what changed. Writes
  are atomic (temporary file + rename); under DDP rank 0 renders and the other ranks read its file.

``cache_dir`` default: ``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo`` (sub-folder
``synthetic``). Delete the folder to reclaim the space: files are ~55 MB per 1,000 RGB images at 96 px (float32,
exactly what the dataset returns).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.checks import check_choice
from zoo.datamodules.disk_cache import cached, key_digest

MODES = ("disk", "memory", "none")
FORMAT = 1  # bump when the file layout changes


def default_cache_dir() -> Path:
    """``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zoo"


def file_fingerprint(path: str | os.PathLike | None) -> Any:
    """(name, size, mtime_ns) of a file, or of every file under a folder (sorted); None for None / a missing path."""
    if path is None:
        return None
    p = Path(os.path.expanduser(str(path)))
    if p.is_file():
        st = p.stat()
        return [str(p.resolve()), st.st_size, st.st_mtime_ns]
    if p.is_dir():
        return [str(p.resolve())] + [[str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns]
                                     for f in sorted(p.rglob("*")) if f.is_file()]
    return [str(p), "missing"]


def source_fingerprint(files: Iterable[str | os.PathLike]) -> str:
    """SHA-256 of the given source files' bytes (the code that renders the samples)."""
    h = hashlib.sha256()
    for f in sorted(str(x) for x in files):
        h.update(f.encode())
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def versions() -> dict[str, str]:
    out = {"numpy": np.__version__, "torch": torch.__version__.split("+")[0]}
    try:
        import numba

        out["numba"] = numba.__version__
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    return out


def cache_key(description: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``description`` (+ the file format) as canonical JSON: the file name part."""
    return key_digest(json.loads(json.dumps({**description, "format": FORMAT}, sort_keys=True, default=str)))[:16]


class CachedDataset(Dataset):
    """A split held in memory: ``samples`` {key: tensor [N, ...]} (what the source dataset's ``__getitem__``
    returned, stacked); ``identities`` (and ``identity_names``) are kept for the P×K sampler and the pair sets."""

    in_memory = True  # the evaluation loader reads it in the main process (no worker processes)

    def __init__(self, samples: Mapping[str, torch.Tensor], identities: Any = None,
                 identity_names: Any = None) -> None:
        lengths = {k: len(v) for k, v in samples.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"cached samples have different lengths per key: {lengths}")
        self.samples = dict(samples)
        self.n = next(iter(lengths.values()))
        if identities is not None:
            self.identities = np.asarray(identities)
        if identity_names is not None:
            self.identity_names = list(identity_names)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= int(index) < self.n:
            raise IndexError(f"index {index} out of range for {self.n} cached samples")
        return {k: v[int(index)] for k, v in self.samples.items()}


def render_all(dataset: Dataset, batch_size: int = 64, num_workers: int = 0) -> dict[str, torch.Tensor]:
    """Every sample of ``dataset`` in index order, stacked per key (rendered by ``num_workers`` processes)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        for k, v in batch.items():
            parts.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


def cached_split(dataset: Dataset, description: Mapping[str, Any], name: str, mode: str = "disk",
                 cache_dir: str | os.PathLike | None = None, batch_size: int = 64,
                 num_workers: int = 0) -> Dataset:
    """``dataset`` as a :class:`CachedDataset` under ``mode`` ("disk" | "memory"; "none" returns ``dataset``
    itself); see the module docstring. ``description``: JSON-able, everything that determines the samples."""
    check_choice("data.eval_cache", mode, MODES)
    if mode == "none":
        return dataset
    extra = {k: getattr(dataset, k) for k in ("identities", "identity_names") if hasattr(dataset, k)}
    built: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        built["samples"] = render_all(dataset, batch_size, num_workers)
        return built

    if mode == "memory":
        return CachedDataset(build()["samples"], **extra)
    key = json.loads(json.dumps({**description, "format": FORMAT}, sort_keys=True, default=str))
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir() / "synthetic"
    path = folder / f"{name}-{key_digest(key)[:16]}.pt"
    try:
        payload, _ = cached(path, key, build, f"rendered {name} split")
    except OSError as e:  # a read-only or full disk must not stop training: memory only, said once
        if not built:
            raise
        for tmp in path.parent.glob(f"{path.stem}.tmp*") if path.parent.is_dir() else []:
            tmp.unlink(missing_ok=True)
        warnings.warn(f"data.cache_dir: could not write {path} ({e}); the split stays cached in memory only "
                      f"(set data.cache_dir to a writable folder, or data.eval_cache=memory)", stacklevel=2)
        payload = built
    if len(next(iter(payload["samples"].values()))) != len(dataset):  # pragma: no cover - the key holds the sizes
        raise ValueError(f"{path}: cached split has another size than the dataset; delete the file")
    return CachedDataset(payload["samples"], **extra)
