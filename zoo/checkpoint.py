"""The zoo checkpoint format: what train.py adds to a Lightning checkpoint and how it is read back.

A zoo checkpoint is a Lightning checkpoint (``state_dict``, ``hyper_parameters``, loop/optimizer/callback
state) plus ``checkpoint["zoo"] = {"config", "model_class", "wandb_id"}``:

* ``config``: the resolved run config (plain dict), so evaluate.py, export.py and
  :mod:`zoo.models.inference` rebuild the run without Hydra;
* ``model_class``: ``"module.QualName"`` of the LightningModule that wrote it;
* ``wandb_id``: the W&B run id (a resumed run continues the same W&B run).

:func:`record` writes the entry (called by :class:`zoo.run.RunRecord`), :func:`load_run_checkpoint` reads it
with messages that name the file: missing file, a file that is not a checkpoint (truncated download, text
file), a checkpoint of another model class than the one expected. This module is the only one that knows the
format; inference and export import it, not the orchestrator :mod:`zoo.run`.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

KEY = "zoo"


def class_path(cls: type) -> str:
    """``"module.QualName"`` of ``cls`` (what :func:`record` stores)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def record(checkpoint: dict[str, Any], config: dict[str, Any], model_class: type,
           wandb_id: str | None = None) -> None:
    """Add the zoo entry to a Lightning ``checkpoint`` dict (in place)."""
    checkpoint[KEY] = {"config": config, "model_class": class_path(model_class), "wandb_id": wandb_id}


def read(path: str | os.PathLike, what: str = "ckpt_path") -> dict[str, Any]:
    """``torch.load`` a checkpoint on CPU; ``ValueError`` naming ``what`` and the file when it is missing,
    truncated or not a torch checkpoint at all. Loads with ``weights_only=False`` (zoo checkpoints hold
    sampler state as numpy arrays): load only checkpoints you trust."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what}: checkpoint file {p} does not exist")
    size = p.stat().st_size
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError,
            ValueError, AttributeError, ModuleNotFoundError, IndexError) as e:
        raise ValueError(f"{what}: {p} ({size} bytes) could not be read as a PyTorch checkpoint: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; expected a .ckpt file "
                         f"written by train.py (is the file truncated, still being copied, or not a checkpoint?)"
                         ) from e
    if not isinstance(ckpt, dict):
        raise ValueError(f"{what}: {p} holds a {type(ckpt).__name__}, not a checkpoint dict; expected a .ckpt "
                         f"file written by train.py")
    return ckpt


def recorded_class(ckpt: dict[str, Any]) -> str | None:
    """The model class path recorded in a checkpoint (zoo entry, else the saved config's model._target_)."""
    entry = ckpt.get(KEY) or {}
    return entry.get("model_class") or ((entry.get("config") or {}).get("model") or {}).get("_target_")


def load_run_checkpoint(path: str | os.PathLike, expected: type | None = None, what: str = "ckpt_path"
                        ) -> tuple[type, dict[str, Any], dict[str, Any]]:
    """(model class, saved run config (may be empty), raw checkpoint) of a zoo checkpoint.

    ``expected``: a class the recorded one must be (a subclass of); a checkpoint of another model fails with a
    short message naming both classes.
    """
    from hydra.utils import get_class  # the class path is resolved like the config's _target_

    p = Path(path)
    ckpt = read(p, what)
    cls_path = recorded_class(ckpt)
    if not cls_path:
        raise ValueError(f"{what}: {p} is not a zoo checkpoint (no checkpoint['zoo']['model_class']); train it "
                         f"with train.py, or pass the model class yourself")
    try:
        cls = get_class(cls_path)
    except Exception as e:  # noqa: BLE001 - hydra raises ImportError or ValueError depending on the path
        raise ValueError(f"{what}: {p} was written by model class {cls_path}, which cannot be imported here "
                         f"({type(e).__name__})") from e
    if expected is not None and not issubclass(cls, expected):
        raise ValueError(f"{what}: {p} holds a {cls_path} checkpoint, expected a {class_path(expected)} "
                         f"(or subclass) checkpoint")
    return cls, (ckpt.get(KEY) or {}).get("config") or {}, ckpt


def atomic_checkpoint_io() -> Any:
    """A Lightning ``CheckpointIO`` that writes ``<path>.tmp`` and renames it onto ``<path>`` (``os.replace``), so
    a run killed while saving (``kill -9``, power loss) leaves the previous ``last.ckpt`` intact instead of a
    truncated file. Used by :func:`zoo.run.train` for every local checkpoint."""
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            p = Path(path)
            if "://" in str(path):  # remote file systems: Lightning's own writer
                return super().save_checkpoint(checkpoint, path, storage_options)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + ".tmp")
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, p)

    return AtomicCheckpointIO()


def check_model_class(ckpt: dict[str, Any], model: Any, path: str | os.PathLike, what: str = "ckpt_path") -> None:
    """Fail before Lightning's restore when ``ckpt`` (a zoo checkpoint) was written by another model class
    than ``model``'s; checkpoints without a zoo entry pass (Lightning reports their key mismatches)."""
    cls_path = recorded_class(ckpt)
    if cls_path and cls_path != class_path(type(model)):
        raise ValueError(f"{what}: {path} holds a {cls_path} checkpoint, but this run builds a "
                         f"{class_path(type(model))}; pick the model config the checkpoint was trained with")
