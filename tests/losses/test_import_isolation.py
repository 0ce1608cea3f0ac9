"""Importing zoo.losses must not pull in Lightning, Hydra, W&B or timm (checked in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ["lightning", "pytorch_lightning", "hydra", "wandb", "timm"]


def test_zoo_losses_imports_only_torch():
    code = (
        "import sys, json; import zoo.losses; from zoo.losses import WingLoss, build; build('arcface', "
        "embedding_dim=4, num_classes=2); "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
