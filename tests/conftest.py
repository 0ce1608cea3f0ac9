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


def train_on_afw_faces(root: Path, image_size: int, n: int = 24) -> dict:
    """A landmark run of 3 steps on the first ``n`` afw_68 faces, linked into ``root/faces`` (train.py's own
    ``zoo.run.train`` with afw_helen; val/test 25 % each): its result dict (``best_model_path``, ``datamodule``)."""
    from hydra import compose, initialize_config_dir

    from zoo.run import train

    src = shared_path("afw_68")
    (root / "faces").mkdir(parents=True)
    for pts in sorted(src.glob("*.pts"))[:n]:
        for f in (pts, pts.with_suffix(".jpg")):
            (root / "faces" / f.name).symlink_to(f)
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=afw_helen", f"data.data_dir={root}", "data.root=[faces]", f"data.image_size={image_size}",
            "data.batch_size=4", "data.num_workers=0", "data.val_fraction=0.25", "data.test_fraction=0.25",
            "logger=csv", f"paths.output_dir={root / 'run'}", "trainer.max_steps=3", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "test=false"])
    return train(cfg)


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
