"""Shared pytest fixtures: environment for offline runs and the ../shared/data folder (skipped when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
if "ZOO_CACHE_DIR" not in os.environ:  # rendered val/test caches (zoo.datamodules.eval_cache) stay out of ~/.cache
    import atexit
    import shutil
    import tempfile

    os.environ["ZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ZOO_CACHE_DIR"], True)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZOO_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test with a reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (real research data lives beside the repo only on the project's machines; "
                    f"set ZOO_SHARED_DATA to point elsewhere)")
    return p


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("ZOO_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)
