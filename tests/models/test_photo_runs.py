"""zoo.models.photo_runs pieces that need no checkpoint: predict.py's default checkpoint (the newest landmark run)."""
from __future__ import annotations

import os
import time

import pytest
from omegaconf import OmegaConf

from zoo.models.photo_runs import find_landmark_checkpoint


def _run(root, name, target, files, mtime):
    ck = root / name / "checkpoints"
    ck.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"model": {"_target_": target}}), ck / "config.yaml")
    for f in files:
        (ck / f).write_bytes(b"x")
        os.utime(ck / f, (mtime, mtime))
    return ck


def test_newest_landmark_checkpoint_best_before_last(tmp_path):
    now = time.time()
    old = _run(tmp_path, "a", "zoo.models.landmark.LandmarkRegressor", ["best-epoch003.ckpt", "last.ckpt"], now - 100)
    _run(tmp_path, "b", "zoo.models.recognition.ArcFaceModel", ["best-epoch009.ckpt"], now)  # not a landmark run
    assert find_landmark_checkpoint([tmp_path]) == old / "best-epoch003.ckpt"
    new = _run(tmp_path, "c", "zoo.models.landmark.LandmarkRegressor", ["last.ckpt"], now - 10)
    assert find_landmark_checkpoint([tmp_path / "missing", tmp_path]) == new / "last.ckpt"


def test_no_landmark_checkpoint_names_the_key(tmp_path):
    _run(tmp_path, "b", "zoo.models.recognition.ArcFaceModel", ["best-epoch009.ckpt"], time.time())
    with pytest.raises(ValueError, match="ckpt_path=None is invalid: no landmark checkpoint under"):
        find_landmark_checkpoint([tmp_path])
