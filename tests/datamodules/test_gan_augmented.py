"""GanAugmentedDataModule: mixing and source tags, filter, caching key/rebuild, samplers (uniform, LPBB, P×K),
DDP (2 gloo ranks), bad input, and one fast training run per task through ``data=gan_augmented``.

The wrapper's logic is tested against ``_fake_gan`` (flat-colour generator, exact inversion: every expected value
below is computed by hand from that model, not read back from the code)."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
import _fake_gan  # noqa: E402

from zoo.datamodules.gan_augmented import GanAugmentedDataModule, paste_back, resize_affine  # noqa: E402
from zoo.datamodules.samples import check_sample  # noqa: E402

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (120, 120, 120), (220, 220, 60), (60, 220, 220)]


def face_folder(root: Path, n: int = 6, size: int = 48) -> Path:
    """n flat-colour RGB faces with 68 landmarks inside the image (the 300-W .pts layout, 1-based)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = COLOURS[i % len(COLOURS)][::-1]  # BGR on disk
        cv2.imwrite(str(root / f"f{i}.png"), img)
        pts = rng.uniform(10, size - 10, size=(68, 2)) + 1
        body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in pts)
        (root / f"f{i}.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
    return root


def identity_tree(root: Path, counts=(4, 4, 4, 4, 4, 4), size: int = 24) -> Path:
    for k, c in enumerate(counts):
        d = root / f"id{k}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(c):
            img = np.zeros((size, size, 3), np.uint8)
            img[:] = COLOURS[(k + j) % len(COLOURS)]
            cv2.imwrite(str(d / f"{j}.png"), img)
    return root


def landmark_base(root: Path, **kw) -> dict:
    return {"_target_": "zoo.datamodules.landmark_folders.LandmarkDataModule", "format": "pts_folder",
            "root": [str(root)], "image_size": 32, "grayscale": True, "val_fraction": 0.0, "test_fraction": 0.0,
            "split_by": "sample", "batch_size": 4, "num_workers": 0, **kw}


def identity_base(root: Path, **kw) -> dict:
    return {"_target_": "zoo.datamodules.identity.IdentityDataModule", "root": str(root), "layout": "folders",
            "val_fraction": 0.34, "test_fraction": 0.0, "image_size": 24, "channels": 3, "batch_size": 4,
            "num_workers": 0, "num_pairs": 20, **kw}


def gan_dm(base: dict, cache: Path, **kw) -> GanAugmentedDataModule:
    args = dict(base=base, generator="fake16", attributes=["brightness"], alpha=[0.5, 1.0], copies=2,
                filter=False, detector="fake", cache_dir=str(cache), encoder_steps=1, direction_samples=10, seed=0)
    args.update(kw)
    dm = GanAugmentedDataModule(**args)
    dm.setup("fit")
    return dm


@pytest.fixture
def fake(monkeypatch):
    return _fake_gan.install(monkeypatch)


# ---- mixing, tags, images, landmarks -------------------------------------------------------------------------------
def test_landmark_mixing_source_tags_and_hand_computed_edits(tmp_path, fake):
    faces = face_folder(tmp_path / "faces")
    dm = gan_dm(landmark_base(faces), tmp_path / "cache")
    ds = dm.datasets["train"]
    assert len(ds) == 6 + 6 * 2 and ds.n_real == 6 and ds.n_gan == 12
    info = dm.info
    assert info.subset_names == ["faces", "gan/faces"] and info.sizes["train"] == 18
    real_base = dm.base.datasets["train"]
    bank = dm.bank
    for i in range(len(ds)):
        s = ds[i]
        check_sample(s, "landmarks")
        assert int(s["index"]) == i
        assert int(s["source"]) == (i >= 6)
        assert int(s["subset"]) == (i >= 6)
        if i < 6:
            continue
        j = i - 6
        b = int(bank["base_index"][j])
        ref = real_base[b]
        torch.testing.assert_close(s["landmarks"], ref["landmarks"])  # photometric edit: landmarks kept
        torch.testing.assert_close(s["norm"], ref["norm"])
        assert s["image"].shape == ref["image"].shape == (1, 32, 32)
        # by hand: the face's flat RGB colour c -> z = atanh(c/127.5 - 1); edit adds alpha / sqrt(3) to each of
        # z[0..2]; the GAN image is that flat colour; pasted over the whole crop; grayscale = BT.601 of it
        rgb = np.array(COLOURS[b % len(COLOURS)], np.float64)
        a = float(bank["alpha"][j, 0])
        edited = (np.tanh(np.arctanh(np.clip(rgb / 127.5 - 1, -0.99, 0.99)) + a / np.sqrt(3)) + 1) * 127.5
        gray = 0.299 * edited[0] + 0.587 * edited[1] + 0.114 * edited[2]
        centre = s["image"][0, 8:24, 8:24] * 255
        assert abs(float(centre.mean()) - gray) < 2.0, (float(centre.mean()), gray)
        assert 0.5 <= abs(a) <= 1.0
    # every inverted face is used `copies` times
    assert sorted(np.bincount(bank["base_index"], minlength=6).tolist()) == [2] * 6


def test_paste_back_keeps_real_pixels_outside_the_gan_crop():
    real = np.full((40, 40, 3), 10, np.uint8)
    gan = np.full((16, 16, 3), 250, np.uint8)
    # the GAN crop covers the central 20x20 square: real px (x) -> gan px (x - 10) * 16 / 20
    s = 16 / 20
    aff = np.array([[s, 0, -10 * s + 0.5 * s - 0.5], [0, s, -10 * s + 0.5 * s - 0.5]])
    out = paste_back(real, gan, aff)
    assert (out[15:25, 15:25] == 250).all() and (out[:8] == 10).all() and (out[:, 33:] == 10).all()
    np.testing.assert_allclose(resize_affine(32, 16) @ np.array([31.5, 31.5, 1]), [15.5, 15.5])  # edge to edge


def test_filter_keeps_only_small_disagreement_and_zero_copies_is_the_base(tmp_path, fake):
    faces = face_folder(tmp_path / "faces")
    base = landmark_base(faces)
    dm = gan_dm(base, tmp_path / "c1", filter=True, threshold=0.1, alpha=[0.0, 2.0], copies=3)
    bank = dm.bank
    # independent: recompute every drawn edit's fake score from the generator model by hand
    kept = dm.report["copies_kept"]
    assert dm.report["edits_made"] == 18 and 0 < kept < 18 and len(dm.datasets["train"]) == 6 + kept
    for j in range(kept):
        b, a = int(bank["base_index"][j]), float(bank["alpha"][j, 0])
        c = np.clip(np.array(COLOURS[b % len(COLOURS)]) / 127.5 - 1, -0.99, 0.99)
        score = np.abs(np.tanh(np.arctanh(c) + a / np.sqrt(3)) - c).mean() / 2
        assert score < 0.1 + 1e-3 and abs(float(bank["score"][j, 0]) - score) < 0.01
    none = gan_dm(base, tmp_path / "c2", filter=True, threshold=1e-6)
    assert none.datasets["train"].n_gan == 0 and none.info.subset_names == ["faces"]
    zero = gan_dm(base, tmp_path / "c3", copies=0)
    assert len(zero.datasets["train"]) == 6 and "invert" not in fake or fake["invert"] == 2


def test_per_epoch_edits_draw_among_variants(tmp_path, fake):
    faces = face_folder(tmp_path / "faces")
    dm = gan_dm(landmark_base(faces), tmp_path / "c", edits="per_epoch", variants=3, copies=1)
    ds = dm.datasets["train"]
    assert dm.bank["images"].shape[1] == 3
    torch.manual_seed(0)
    vals = {round(float(ds[6]["image"].mean()), 4) for _ in range(40)}
    want = {round(float(v.mean()) / 255, 4) for v in dm.bank["images"][0].astype(np.float64)}
    assert vals <= want and len(vals) >= 2


# ---- caching ------------------------------------------------------------------------------------------------------------
def test_cache_reused_and_rebuilt_on_data_generator_or_setting_change(tmp_path, monkeypatch, caplog):
    calls = _fake_gan.install(monkeypatch)
    faces = face_folder(tmp_path / "faces")
    base, cache = landmark_base(faces), tmp_path / "cache"
    first = gan_dm(base, cache)
    assert calls["invert"] == 1 and first.report["inversions_rebuilt"]
    again = gan_dm(base, cache)
    assert calls["invert"] == 1 and not again.report["inversions_rebuilt"] and not again.report["edits_rebuilt"]
    np.testing.assert_array_equal(first.bank["images"], again.bank["images"])
    # only an edit setting changed: inversions reused, edits rebuilt
    alpha = gan_dm(base, cache, alpha=[2.0, 3.0])
    assert calls["invert"] == 1 and alpha.report["edits_rebuilt"]
    # another generator (weights hash): detected and rebuilt, the message names what changed
    _fake_gan.install(monkeypatch, calls, weights_hash="w1")
    with caplog.at_level("WARNING"):
        gan_dm(base, cache)
    assert calls["invert"] == 2 and "generator" in caplog.text
    # the data changed (a file rewritten: size/mtime), same names
    caplog.clear()
    img = cv2.imread(str(faces / "f3.png"))
    cv2.imwrite(str(faces / "f3.png"), img[:, ::-1].copy() + 1)
    st = os.stat(faces / "f3.png")
    os.utime(faces / "f3.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with caplog.at_level("WARNING"):
        gan_dm(base, cache)
    assert calls["invert"] == 3 and "files" in caplog.text
    # an inversion setting changed
    gan_dm(base, cache, refine_steps=7)
    assert calls["invert"] == 4
    # max_faces inverts a seeded subset
    sub = gan_dm(base, cache, max_faces=3)
    assert calls["invert"] == 5 and sub.report["faces_inverted"] == 3 and len(set(sub.bank["base_index"])) == 3


# ---- identities and samplers -------------------------------------------------------------------------------------------
def test_identity_copies_keep_identity_and_pk_batches(tmp_path, fake):
    from functools import partial

    from zoo.datamodules.samplers.pk import PKSampler

    root = identity_tree(tmp_path / "ids")
    dm = gan_dm(identity_base(root), tmp_path / "cache", copies=1, batch_size=4, sampler=partial(PKSampler, k=2))
    ds = dm.datasets["train"]
    real = dm.base.datasets["train"]
    assert ds.n_gan == len(real) and dm.info.num_identities == real.num_identities
    for j in range(ds.n_gan):
        s = ds[ds.n_real + j]
        check_sample(s, "identities")
        b = int(dm.bank["base_index"][j])
        assert int(s["identity"]) == int(real.identities[b]) == int(ds.identities[ds.n_real + j])
        assert int(s["source"]) == 1 and s["image"].shape == real[b]["image"].shape
    assert dm.pairs("val") == dm.base.pairs("val")
    batches = list(iter(dm.train_dataloader().batch_sampler))
    for b in batches:
        ids = ds.identities[b]
        assert len(set(ids.tolist())) == 2 and all((ids == u).sum() == 2 for u in set(ids.tolist()))
    assert max(max(b) for b in batches) >= ds.n_real  # GAN samples are drawn


def test_uniform_and_lpbb_samplers_cover_real_and_gan(tmp_path, fake):
    from functools import partial

    from zoo.datamodules.samplers.lpbb import LPBBSampler
    from zoo.datamodules.samplers.uniform import UniformSampler

    faces = face_folder(tmp_path / "faces")
    dm = gan_dm(landmark_base(faces), tmp_path / "c", sampler=partial(UniformSampler))
    batches = list(dm.train_dataloader())
    idx = torch.cat([b["index"] for b in batches])
    assert len(set(idx.tolist())) == 16 and idx.max() < 18  # drop_last: 4 batches of 4 of 18
    assert set(torch.cat([b["source"] for b in batches]).tolist()) == {0, 1}
    dm2 = gan_dm(landmark_base(faces), tmp_path / "c", sampler=partial(LPBBSampler))
    b = next(iter(dm2.train_dataloader()))
    assert (b["index"] < 18).all() and b["image"].shape[1:] == (1, 32, 32)


# ---- DDP ----------------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, faces: str, out: str) -> None:
    from functools import partial

    from zoo.datamodules.samplers.uniform import UniformSampler

    torch.set_num_threads(1)
    sys.modules["zoo.gan"] = _fake_gan.make({})
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        dm = gan_dm(landmark_base(Path(faces)), Path(out) / "cache", sampler=partial(UniformSampler), drop_last=False)
        idx = [int(i) for b in dm.train_dataloader() for i in b["index"]]
        torch.save({"idx": idx, "images": torch.from_numpy(dm.bank["images"]),
                    "rebuilt": dm.report["inversions_rebuilt"]}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_two_gloo_ranks_one_cache_identical_bank_disjoint_shares(tmp_path):
    faces = face_folder(tmp_path / "faces")
    mp.spawn(_ddp_worker, args=(_free_port(), str(faces), str(tmp_path)), nprocs=2, join=True)
    r = [torch.load(tmp_path / f"rank{k}.pt") for k in range(2)]
    assert r[0]["rebuilt"] and not r[1]["rebuilt"]  # rank 0 built the cache, rank 1 loaded it
    assert torch.equal(r[0]["images"], r[1]["images"])
    assert not set(r[0]["idx"]) & set(r[1]["idx"]) and sorted(r[0]["idx"] + r[1]["idx"]) == list(range(18))


# ---- bad input ----------------------------------------------------------------------------------------------------------
def test_bad_input_names_key_and_lists_valid_values(tmp_path, fake):
    faces = face_folder(tmp_path / "faces")
    base = landmark_base(faces)
    with pytest.raises(ValueError, match=r"data.base=.*afw_helen"):
        GanAugmentedDataModule(base="no_such_data")
    with pytest.raises(ValueError, match=r"data.alpha"):
        GanAugmentedDataModule(base=base, alpha=[1.0, 20.0])
    with pytest.raises(ValueError, match=r"data.alpha"):
        GanAugmentedDataModule(base=base, alpha=[3.0, 1.0])
    with pytest.raises(ValueError, match=r"data.threshold"):
        GanAugmentedDataModule(base=base, threshold=1.5)
    with pytest.raises(ValueError, match=r"data.edits"):
        GanAugmentedDataModule(base=base, edits="sometimes")
    with pytest.raises(ValueError, match=r"data.attributes.*unknown.*brightness"):
        gan_dm(base, tmp_path / "c", attributes=["beard"])
    with pytest.raises(ValueError, match=r"data.detector.*fake"):
        gan_dm(base, tmp_path / "c", filter=True, detector="mediapipe")
    with pytest.raises(ValueError, match=r"data.align_detector.*fake"):
        gan_dm(identity_base(identity_tree(tmp_path / "ids2")), tmp_path / "c", align="detector")
    with pytest.raises(ValueError, match=r"data.align.*68-point"):
        gan_dm(identity_base(identity_tree(tmp_path / "ids")), tmp_path / "c", align="landmarks")
    with pytest.raises(ValueError, match=r"data.base.*not a zoo datamodule"):
        GanAugmentedDataModule(base={"_target_": "builtins.dict"})


# ---- one fast training run per task through train.py's config --------------------------------------------------------
def _compose(overrides):
    from hydra import compose, initialize_config_dir

    from conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_train_landmarks_through_gan_augmented(tmp_path, fake):
    from zoo.run import train

    faces = face_folder(tmp_path / "faces", n=10, size=64)
    cfg = _compose(["data=gan_augmented", "data.base=afw_helen", "data.generator=fake16", "data.detector=fake",
                    "data.attributes=[brightness,smile]", "data.threshold=0.3", f"data.cache_dir={tmp_path}/cache",
                    f"+data.base_overrides.root=[{faces}]", "+data.base_overrides.image_size=64",
                    "+data.base_overrides.split_by=sample", "data.num_workers=0", "data.batch_size=4",
                    "logger=csv", f"paths.output_dir={tmp_path}", "trainer.fast_dev_run=true",
                    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"])
    res = train(cfg)
    dm = res["datamodule"]
    assert dm.datasets["train"].n_gan > 0 and not res["trainer"].interrupted
    grid = [cb for cb in res["trainer"].callbacks if type(cb).__name__ == "GanGrid"][0]
    assert grid.logged and min(cv2.imread(str(grid.path)).shape[:2]) >= 2 * 16  # faces x (original, edit), x2
    assert res["model"].hparams.num_landmarks == 68 and "test/nme" in res["test_metrics"]


def test_train_arcface_through_gan_augmented_with_pk(tmp_path, fake):
    from zoo.run import train

    root = identity_tree(tmp_path / "ids", counts=(4,) * 8, size=32)
    cfg = _compose(["model=arcface", "model.backbone=resnet10t", "data=gan_augmented", "data.base=johns",
                    f"+data.base_overrides.root={root}", "+data.base_overrides.image_size=32",
                    "+data.base_overrides.num_pairs=40", "data.generator=fake16", "data.filter=false",
                    "data.attributes=[brightness]", f"data.cache_dir={tmp_path}/cache", "data.num_workers=0",
                    "data.batch_size=8", "sampler=pk", "sampler.k=4", "logger=csv", f"paths.output_dir={tmp_path}",
                    "trainer.fast_dev_run=true", "trainer.enable_progress_bar=false",
                    "trainer.enable_model_summary=false"])
    res = train(cfg)
    dm = res["datamodule"]
    assert dm.datasets["train"].n_gan == len(dm.base.datasets["train"]) and not res["trainer"].interrupted
    assert res["model"].num_identities == dm.info.num_identities


def test_generate_writes_base_format_and_grid(tmp_path, fake):
    from hydra import compose, initialize_config_dir

    from conftest import REPO
    from generate import run
    from zoo.io.pts import read_pts

    faces = face_folder(tmp_path / "faces")
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("generate", overrides=[
            "data=gan_augmented", "data.generator=fake16", "data.attributes=[brightness]", "data.filter=false",
            "data.copies=1", f"data.cache_dir={tmp_path}/cache", f"+data.base_overrides.root=[{faces}]",
            "+data.base_overrides.image_size=32", "+data.base_overrides.split_by=sample", f"out_dir={tmp_path}/out"])
    res = run(cfg)
    train = tmp_path / "out" / "train"
    pngs = sorted(train.glob("gan_*.png"))
    assert res["train"]["written"] == len(pngs) > 0 and (tmp_path / "out" / "gan_grid.png").is_file()
    rows = (train / "gan_provenance.csv").read_text().splitlines()
    assert len(rows) == len(pngs) + 1
    # each written face has its base face's landmarks (the base's crop frame), readable by the zoo's .pts reader
    dm = GanAugmentedDataModule(base="afw_helen", base_overrides={"root": [str(faces)], "image_size": 32,
                                "split_by": "sample"}, generator="fake16", attributes=["brightness"], filter=False,
                                copies=1, cache_dir=str(tmp_path / "cache"))
    dm.setup()
    real = dm.base.datasets["train"]
    for j, p in enumerate(pngs):
        b = int(rows[j + 1].split(",")[1])
        np.testing.assert_allclose(read_pts(p.with_suffix(".pts"), 68), real[b]["landmarks"].numpy(), atol=1e-3)
        assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape == (32, 32)


def test_lpbb_refresh_view_and_run_seed_shares_the_cache(tmp_path, monkeypatch):
    calls = _fake_gan.install(monkeypatch)
    root = identity_tree(tmp_path / "ids")
    a = gan_dm(identity_base(root, seed=0), tmp_path / "cache", seed=0)
    b = gan_dm(identity_base(root, seed=5), tmp_path / "cache", seed=5)  # another run seed: same GAN data
    assert calls["invert"] == 1 and not b.report["edits_rebuilt"]
    view = a.datasets["train"].without_augmentation()
    assert len(view) == len(a.datasets["train"]) and torch.equal(view[len(view) - 1]["image"],
                                                                 a.datasets["train"][len(view) - 1]["image"])
