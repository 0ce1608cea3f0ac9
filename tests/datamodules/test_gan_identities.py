"""data=gan_identities: the three synthetic sets written by a (tiny, untrained) identity-GAN checkpoint, the
no-face filter counts, and the mix into the base's training split (val/test real, untouched)."""
from __future__ import annotations

import json

import lightning
import numpy as np
import pytest
import torch

from conftest import shared_path


def identity_gan_ckpt(path, facenet_ckpt):
    from zoo.checkpoint import record
    from zoo.models.identity_gan import IdentityGanModel

    torch.manual_seed(0)
    m = IdentityGanModel(identity_ckpt=facenet_ckpt, image_size=32, width=8, max_width=32, attr_dim=16,
                         attr_hidden=32, d_features=32, idgan_noise=8, idgan_hidden=16)
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams),
            "pytorch-lightning_version": lightning.__version__}
    record(ckpt, {}, IdentityGanModel)
    torch.save(ckpt, path)
    return str(path)


@pytest.fixture(scope="module")
def synth_ckpt(tmp_path_factory):
    from models.test_identity_gan import recognition_ckpt

    d = tmp_path_factory.mktemp("gan_ids")
    return identity_gan_ckpt(d / "idgan.ckpt", recognition_ckpt(d / "facenet.ckpt", image_size=32))


def make_dm(tmp_path, ckpt, **kw):
    from zoo.datamodules.gan_identities import GanIdentitiesDataModule

    root = shared_path("johns")
    args = dict(base="johns", base_overrides={"root": str(root), "image_size": 32, "num_workers": 0,
                                              "num_pairs": 40, "pair_folds": 2},
                synthesis_ckpt=ckpt, sets_dir=str(tmp_path / "sets"), filter=False,
                thresholds={"search": 1.3, "ids": 1e-12, "match": 2.0, "unique": 1e-12},  # untrained G: loose
                new_identities=2, images_per_identity=3, max_attempts=20, batch_size=8, num_workers=0)
    args.update(kw)
    return GanIdentitiesDataModule(**args)


def test_sets_written_and_mixed(tmp_path, synth_ckpt):
    dm = make_dm(tmp_path, synth_ckpt, sets=["reconstructed", "new_faces", "new_identities"])
    dm.setup("fit")
    real = dm.base.datasets["train"]
    man = json.loads((tmp_path / "sets" / "manifest.json").read_text())
    n_real = len(real)
    assert man["sets"]["reconstructed"]["written"] == n_real == man["real_images"]
    assert man["sets"]["new_faces"]["written"] == n_real
    assert man["search"]["counts"]["found"] == 2
    # new identity j has as many images as real identity j (sorted label order)
    counts = np.bincount(real.identities)
    for j in range(2):
        assert len(list((tmp_path / "sets" / "new_identities" / f"new_{j:04d}").glob("*.png"))) == counts[j]
    # New Faces / Reconstructed keep the real identity names (same labels in the mix); new identities are new
    assert sorted(p.name for p in (tmp_path / "sets" / "new_faces").iterdir()) == sorted(real.identity_names)
    train = dm.datasets["train"]
    assert len(train) == 3 * n_real + counts[:2].sum()
    assert train.num_identities == real.num_identities + 2
    assert int(train.source.sum()) == len(train) - n_real
    s = train[len(train) - 1]
    assert s["image"].shape == (3, 32, 32) and -1.0 <= float(s["image"].min())
    # validation split and pairs are the base's (real only)
    assert dm.datasets["val"] is dm.base.datasets["val"] and dm.pairs("val") == dm.base.pairs("val")
    # synthetic-only training set
    only = make_dm(tmp_path, synth_ckpt, sets=["new_identities"], real=False)
    only.setup("fit")
    assert len(only.datasets["train"]) == counts[:2].sum() and only.datasets["train"].num_identities == 2


def test_no_face_filter_drops_and_counts(tmp_path, synth_ckpt):
    """An untrained generator draws no faces: dlib's HOG finds none and every image is dropped and counted."""
    from zoo.gan.detectors import dlib_available

    if not dlib_available():
        pytest.skip("dlib / face_recognition_models not installed")
    dm = make_dm(tmp_path, synth_ckpt, sets=["reconstructed"], filter=True)
    man = dm.generate(tmp_path / "filtered", ["reconstructed"])
    r = man["sets"]["reconstructed"]
    assert r["generated"] == man["real_images"] and r["dropped_no_face"] + r["written"] == r["generated"]
    assert r["dropped_no_face"] > 0.9 * r["generated"]
    assert len(list((tmp_path / "filtered").rglob("*.png"))) == r["written"]


def test_bad_input(tmp_path, synth_ckpt):
    with pytest.raises(ValueError, match="data.sets_dir"):
        make_dm(tmp_path, None).setup("fit")
    with pytest.raises(ValueError, match="data.sets"):
        make_dm(tmp_path, synth_ckpt, sets=["old_faces"])
    with pytest.raises(ValueError, match="data.thresholds"):  # nothing can satisfy these: bounded, then an error
        make_dm(tmp_path, synth_ckpt, sets=["new_identities"], max_attempts=3,
                thresholds={"search": 1.3, "ids": 1e-12, "match": 2.0, "unique": 2.0}).setup("fit")
    with pytest.raises(ValueError, match="data.synthesis_ckpt.*expected a zoo.models.identity_gan"):
        from models.test_identity_gan import recognition_ckpt

        make_dm(tmp_path, recognition_ckpt(tmp_path / "f.ckpt"), sets_dir=str(tmp_path / "x")).setup("fit")


def test_generate_py_writes_the_three_sets(tmp_path, synth_ckpt):
    """python generate.py data=gan_identities ... (through generate.run): three identity-folder sets + manifest."""
    from hydra import compose, initialize_config_dir

    from conftest import REPO
    from generate import run

    root = shared_path("johns")
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("generate", overrides=[
            "data=gan_identities", "data.base=johns", f"+data.base_overrides.root={root}",
            "+data.base_overrides.image_size=32", "+data.base_overrides.num_workers=0", f"data.synthesis_ckpt={synth_ckpt}",
            "data.filter=false", "data.new_identities=1", "data.images_per_identity=2", "data.max_attempts=10",
            "data.thresholds={search: 1.3, ids: 1.0e-12, match: 2.0, unique: 1.0e-12}", f"out_dir={tmp_path}/out"])
    res = run(cfg)
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(res) == {"reconstructed", "new_faces", "new_identities"}
    for name in res:
        pngs = list((tmp_path / "out" / name).rglob("*.png"))
        assert res[name]["written"] == len(pngs) == man["sets"][name]["written"] > 0
