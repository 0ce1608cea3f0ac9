"""Exact resume after ``kill -9`` (issue 13): a real ``python train.py`` subprocess is killed mid-run, resumed with
``ckpt_path=<run>/checkpoints/last.ckpt`` and must end where an uninterrupted run with the same config ends --
same weights, same validation NME, same ``best_model_score``, same LPBB loss table -- in the same run folder.
CPU, one process; without augmentation in the main process, and with ``augment=light`` in 2 DataLoader workers
(the sampler's draws carry their own augmentation seeds, so the fresh workers of the resumed run crop exactly
as the killed run's would have)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import shared_path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def overrides(out: Path, faces: Path, augment: str = "none", workers: int = 0) -> list[str]:
    return [f"paths.output_dir={out}", f"hydra.run.dir={out}", "data=afw_helen", f"data.data_dir={faces.parent}",
            f"data.root=[{faces.name}]", "data.image_size=48", "data.val_fraction=0.2", "data.test_fraction=0.2",
            f"data.num_workers={workers}", "data.batch_size=4", f"augment={augment}", "sampler=lpbb", "logger=csv",
            "trainer.max_epochs=3", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "test=false", "seed=5", "checkpoint_every_n_steps=1",
            "model.head_hidden=32", "trainer.deterministic=true"]


def train_py(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    return out


def final_state(run: Path) -> dict:
    ck = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    best = [v for k, v in ck["callbacks"].items() if "val/nme" in k][0]
    return {"step": ck["global_step"], "weights": ck["state_dict"], "best": best["best_model_score"],
            "table": ck["LandmarkDataModule"]["train_sampler"]}


@pytest.mark.slow  # two training subprocesses plus a resume: ~1-2 min on the shared 2-core machine
@pytest.mark.parametrize("augment,workers", [("none", 0), ("light", 2)])
def test_kill_9_mid_run_then_resume_equals_uninterrupted(tmp_path, augment, workers):
    from test_train import link_faces

    faces = link_faces(shared_path("afw_68"), tmp_path / "data" / "faces", 40)
    opts = {"augment": augment, "workers": workers}
    finish(train_py(overrides(tmp_path / "full", faces, **opts)))
    full = final_state(tmp_path / "full")

    run = tmp_path / "killed"
    proc = train_py(overrides(run, faces, **opts))
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    # kill after the first epoch's validation and at least one more training step (a mid-epoch last.ckpt)
    while not list((run / "checkpoints").glob("best-*.ckpt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    mtime = last.stat().st_mtime_ns if last.exists() else 0
    while (not last.exists() or last.stat().st_mtime_ns == mtime) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < killed_at < full["step"]

    out = finish(train_py(overrides(tmp_path / "elsewhere", faces, **opts) + [f"ckpt_path={last}"]))
    assert f"resuming in the run folder {run}" in out
    res = final_state(run)
    assert res["step"] == full["step"]
    assert torch.equal(torch.as_tensor(res["best"]), torch.as_tensor(full["best"]))
    for k, v in full["weights"].items():
        torch.testing.assert_close(res["weights"][k], v, rtol=0, atol=1e-6, msg=k)
    for k, v in full["table"].items():
        if hasattr(v, "shape"):
            torch.testing.assert_close(torch.as_tensor(res["table"][k]), torch.as_tensor(v), rtol=0, atol=1e-6, msg=k)
        elif isinstance(v, dict):  # pending draws of steps not trained yet (tensors)
            assert res["table"][k].keys() == v.keys(), k
            for step, draws in v.items():
                assert torch.equal(res["table"][k][step], draws), (k, step)
        else:
            assert res["table"][k] == v, k
