"""generate.py (Hydra config composed here, run in-process): files read back with zoo.io.pts and, when present,
the real landmark datamodule; resumable; sharded."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from zoo.io.pts import read_pts
from zoo.synth.export import parse_shard

REPO = Path(__file__).resolve().parents[2]


def _generate_module():
    spec = importlib.util.spec_from_file_location("zoo_generate_script", REPO / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cfg(out, *extra):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("generate", overrides=[f"out_dir={out}", "grid=null", "progress=false", "data.image_size=48",
                                              "data.num_identities=3", "data.images_per_identity=2",
                                              "data.val_identities=1", "data.test_identities=0", *extra])


def test_generate_landmark_folders_read_back(tmp_path):
    gen_mod = _generate_module()
    cfg = _cfg(tmp_path)
    res = gen_mod.run(cfg)
    assert res["train"] == {"written": 6, "skipped": 0} and res["val"] == {"written": 2, "skipped": 0}
    from zoo.synth.generator import FaceGenerator
    from zoo.synth.loaders import load_model

    gen = FaceGenerator(load_model("builtin"), gen_mod.generator_config(cfg.data))
    out, _ = gen(0, 2, 1, 0)
    pts = read_pts(tmp_path / "train" / "000002_001.pts", num_points=68)
    np.testing.assert_allclose(pts, out["landmarks"], atol=1e-3)
    img = cv2.imread(str(tmp_path / "train" / "000002_001.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (48, 48)  # grayscale config
    np.testing.assert_allclose(img / 255.0, out["image"][..., 0], atol=0.5 / 255 + 1e-6)
    rows = (tmp_path / "train" / "params.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("file,split,identity,k,yaw,pitch,roll,norm,visible,light_0")
    # resumable: a second run writes nothing
    assert gen_mod.run(cfg)["train"] == {"written": 0, "skipped": 6}
    (tmp_path / "train" / "000001_000.png").unlink()
    assert gen_mod.run(cfg)["train"] == {"written": 1, "skipped": 5}

    folders = REPO / "zoo" / "datamodules" / "landmark_folders.py"
    if folders.exists():  # the real 300-W datamodule reads the folder back
        from zoo.datamodules.landmark_folders import LandmarkDataModule

        dm = LandmarkDataModule(format="pts_folder", root=str(tmp_path / "train"), val_fraction=0.0,
                                test_fraction=0.0, image_size=48, crop_scale=1.25, num_workers=0, batch_size=2)
        dm.setup()
        ds = dm.datasets["train"]
        assert len(ds) == 6
        s = ds[0]
        assert s["landmarks"].shape == (68, 2) and s["image"].shape[-2:] == (48, 48)


def test_generate_identity_folders_and_shards(tmp_path):
    gen_mod = _generate_module()
    a = gen_mod.run(_cfg(tmp_path, "data=synthetic_3dmm_identities", "splits=[train]", "shard=0/2",
                         "data.images_per_identity=2"))
    b = gen_mod.run(_cfg(tmp_path, "data=synthetic_3dmm_identities", "splits=[train]", "shard=1/2",
                         "data.images_per_identity=2"))
    assert a["train"]["written"] + b["train"]["written"] == 6
    files = sorted(p.relative_to(tmp_path / "train").as_posix() for p in (tmp_path / "train").rglob("*.png"))
    assert files == [f"{i:06d}/{k:03d}.png" for i in range(3) for k in range(2)]
    assert (tmp_path / "train" / "params_shard0of2.csv").exists() and (tmp_path / "train" / "params_shard1of2.csv").exists()


def test_parse_shard_errors():
    assert parse_shard("3/16") == (3, 16) and parse_shard(None) == (0, 1)
    with pytest.raises(ValueError, match="shard '16/16'"):
        parse_shard("16/16")
    with pytest.raises(ValueError, match="shard must be 'i/n'"):
        parse_shard("three")
