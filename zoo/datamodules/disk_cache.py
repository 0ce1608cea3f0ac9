"""A payload built once and kept in a file keyed on its inputs (shared by the GAN-augmented data's inversion/edit
banks and the synthetic data's rendered val/test splits, :mod:`zoo.datamodules.eval_cache`).

:func:`cached` stores ``{"digest", "key", "payload"}`` with ``digest`` = SHA-256 of the key as canonical JSON; a
file whose digest differs (other inputs) or that cannot be read is rebuilt, with a log line naming what changed.
Writes are atomic (temporary file + ``os.replace``). Under DDP rank 0 builds and the other ranks wait at a
barrier, then load (the folder must be on a file system every rank sees).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from zoo.datamodules.base import dist_rank_world

log = logging.getLogger(__name__)


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def key_difference(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Top-level parts of two cache keys that differ (for the rebuild message)."""
    return sorted(k for k in set(old) | set(new) if json.dumps(old.get(k), sort_keys=True, default=str)
                  != json.dumps(new.get(k), sort_keys=True, default=str))


def cached(path: Path, key: dict[str, Any], build: Callable[[], dict[str, Any]],
           what: str = "cache") -> tuple[dict[str, Any], bool]:
    """``(payload, rebuilt)``: the payload stored at ``path`` when its key equals ``key``, else ``build()`` saved
    there with the key. A stale file (other generator, data, settings) is reported and replaced. Under DDP rank 0
    builds and the other ranks wait at a barrier, then load."""
    rank, world = dist_rank_world()
    digest = key_digest(key)

    def load() -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - a truncated/corrupt cache is rebuilt
            log.warning("%s %s unreadable (%s): rebuilding", what, path, e)
            return None
        if blob.get("digest") != digest:
            log.warning("%s %s was built for other inputs (changed: %s): rebuilding", what, path,
                        ", ".join(key_difference(blob.get("key", {}), key)) or "format")
            return None
        return blob["payload"]

    rebuilt = False
    if rank == 0:
        payload = load()
        if payload is None:
            payload, rebuilt = build(), True
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"digest": digest, "key": key, "payload": payload}, tmp)
            os.replace(tmp, path)
            log.info("%s written: %s", what, path)
    if world > 1:
        dist.barrier()
        if rank != 0:
            payload = load()
            if payload is None:
                raise RuntimeError(f"{what} {path}: rank {rank} cannot read what rank 0 wrote (cache_dir must be "
                                   f"on a file system every rank sees)")
    return payload, rebuilt
