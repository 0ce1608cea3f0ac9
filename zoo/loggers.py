"""Weights & Biases setup for zoo runs.

* Offline by default: when neither ``WANDB_API_KEY`` nor ``WANDB_MODE`` is set (and no ``wandb login``
  netrc entry exists), ``WANDB_MODE=offline`` is set, so runs never block on a login prompt. Sync later
  with ``wandb sync <save_dir>/wandb/offline-run-*``.
* Resumable: the run id is written to ``<save_dir>/wandb_run_id.txt`` and stored in every checkpoint
  (``checkpoint["zoo"]["wandb_id"]``, see :mod:`zoo.checkpoint`); a run resumed with ``ckpt_path=...`` reads it
  back and continues the same W&B run (``id=<id>, resume="allow"``).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Mapping

ID_FILE = "wandb_run_id.txt"


def _has_netrc_login() -> bool:
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def ensure_wandb_mode() -> str:
    """Set ``WANDB_MODE=offline`` unless the user configured W&B (key, mode or login); return the mode."""
    if not os.environ.get("WANDB_MODE") and not os.environ.get("WANDB_API_KEY") and not _has_netrc_login():
        os.environ["WANDB_MODE"] = "offline"
    return os.environ.get("WANDB_MODE", "online")


def wandb_id_from_checkpoint(ckpt_path: str | os.PathLike | None) -> str | None:
    """The W&B run id stored in a zoo checkpoint (or in ``wandb_run_id.txt`` of its run folder)."""
    if not ckpt_path:
        return None
    p = Path(ckpt_path)
    for folder in (p.parent, p.parent.parent):
        f = folder / ID_FILE
        if f.is_file():
            return f.read_text().strip() or None
    if p.is_file():
        from zoo.checkpoint import KEY, read

        return (read(p).get(KEY) or {}).get("wandb_id")
    return None


def flatten_metrics(res: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalars of a (nested) metric dict as ``{"a/b": float}`` (what loggers and metrics.json take): numbers and
    one-element tensors/arrays become floats (NaN kept); larger tensors, arrays, lists and strings are left out
    (they go to reports)."""
    out: dict[str, float] = {}
    for k, v in res.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_metrics(v, key + "/"))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, (int, float)):
            out[key] = float(v)
        elif hasattr(v, "item") and getattr(v, "size", None) in (1, (1,)) or \
                (hasattr(v, "numel") and callable(v.numel) and v.numel() == 1):
            out[key] = float(v.item())
    return out


def wandb_logger(save_dir: str, project: str = "zoo", name: str | None = None, id: str | None = None,
                 resume_from: str | None = None, tags: list[str] | None = None, log_model: bool = False,
                 **kwargs: Any):
    """A Lightning ``WandbLogger`` writing under ``save_dir`` (offline unless configured), resuming the run
    of ``resume_from`` (a checkpoint path) when ``id`` is not given."""
    from lightning.pytorch.loggers import WandbLogger
    mode = ensure_wandb_mode()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    run_id = id or wandb_id_from_checkpoint(resume_from)
    if run_id is None:
        run_id = uuid.uuid4().hex[:8]  # W&B-style 8-character id
    (Path(save_dir) / ID_FILE).write_text(run_id)
    logger = WandbLogger(save_dir=save_dir, project=project, name=name, id=run_id, resume="allow",
                         offline=(mode == "offline"), tags=tags, log_model=log_model, **kwargs)
    return logger
