"""Identity datamodules: identity-disjoint splits, sample contract, train fractions, crops and bad-input messages,
on small trees written here and on ../shared/data/johns and ytf_keypoints (skipped when absent)."""
from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest
import torch

from zoo.datamodules.identity import IdentityDataModule, IdentityDataset
from zoo.datamodules.samples import check_sample
from zoo.datamodules.samplers.pk import PKSampler


def _tree(root, counts, size=(16, 16)):
    """root/id<k>/img<j>.png; pixel value encodes (identity, image) so tests can tell crops apart."""
    for k, n in enumerate(counts):
        d = root / f"id{k:02d}"
        d.mkdir(parents=True)
        for j in range(n):
            cv2.imwrite(str(d / f"img{j}.png"), np.full(size + (3,), 10 * k + j, np.uint8))
    return root


def _dm(root, **kw):
    kw.setdefault("num_workers", 0)
    kw.setdefault("image_size", 16)
    return IdentityDataModule(root=str(root), **kw)


def _names(ds):
    return {ds.identity_names[i] for i in ds.identities}


def test_identity_disjoint_split_contiguous_labels_and_info(tmp_path):
    dm = _dm(_tree(tmp_path / "d", [4] * 20), val_fraction=0.2, test_fraction=0.1, batch_size=8)
    dm.setup()
    tr, va, te = (dm.datasets[s] for s in ("train", "val", "test"))
    assert (len(_names(tr)), len(_names(va)), len(_names(te))) == (14, 4, 2)
    assert not (_names(tr) & _names(va)) and not (_names(tr) & _names(te)) and not (_names(va) & _names(te))
    for ds in (tr, va, te):
        assert sorted(set(ds.identities.tolist())) == list(range(ds.num_identities))
        for i in range(len(ds)):  # label -> the folder the file is in
            assert ds.identity_names[ds.identities[i]] == ds.files[i].parent.name
    info = dm.info
    assert (info.task, info.num_identities, info.sizes) == ("identities", 14, {"train": 56, "val": 16, "test": 8})
    s = va[3]
    check_sample(s, "identities")
    assert s["image"].shape == (3, 16, 16) and int(s["index"]) == 3 and int(s["identity"]) == va.identities[3]
    # (x/255 - .5)/.5 of the constant pixel value of that file
    k, j = int(va.files[3].parent.name[2:]), int(va.files[3].stem[3:])
    assert torch.allclose(s["image"], torch.tensor((10 * k + j) / 255 * 2 - 1))
    # another seed deals other identities; the same seed the same ones
    again = _dm(tmp_path / "d", val_fraction=0.2, test_fraction=0.1)
    again.setup()
    assert _names(again.datasets["val"]) == _names(va)
    other = _dm(tmp_path / "d", val_fraction=0.2, test_fraction=0.1, split_seed=5)
    other.setup()
    assert _names(other.datasets["val"]) != _names(va)


def test_train_fraction_images_and_identities(tmp_path):
    root = _tree(tmp_path / "d", [10] * 10 + [3] * 10)
    full = _dm(root, val_fraction=0, test_fraction=0)
    full.setup()
    ds = full.datasets["train"]
    per_id = {}
    for r in (0.1, 0.25, 0.5):
        dm = _dm(root, val_fraction=0, test_fraction=0, train_fraction=r)
        dm.setup()
        t = dm.datasets["train"]
        counts = np.bincount(t.identities)
        # ceil(r*n) images per identity, at least 2: n=10 -> 2, 3, 5; n=3 -> 2, 2, 2
        assert sorted(counts.tolist()) == sorted([max(2, int(np.ceil(r * 10)))] * 10 + [2] * 10)
        assert t.num_identities == 20
        per_id[r] = set(map(str, t.files))
    assert per_id[0.1] <= per_id[0.25] <= per_id[0.5] <= set(map(str, ds.files))  # nested subsets
    dm = _dm(root, val_fraction=0, test_fraction=0, train_fraction=0.25, fraction_mode="identities")
    dm.setup()
    assert dm.info.num_identities == 5 and all(c in (10, 3) for c in np.bincount(dm.datasets["train"].identities))
    with pytest.raises(ValueError, match="data.train_fraction=0.0 is invalid: out of range; expected a finite number in \\(0.0, 1.0\\]"):
        _dm(root, train_fraction=0).setup()


def test_regex_and_list_layouts_and_crops(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("Ann_Lee", "Bo_Ek"):
        for n in range(3):
            img = np.zeros((40, 60, 3), np.uint8)
            img[10:20, 30:40] = 255  # a white square the keypoint/box crops zoom into
            cv2.imwrite(str(flat / f"{name}_{n:02d}.png"), img)
    dm = _dm(flat, layout="regex", val_fraction=0, test_fraction=0)
    dm.setup()
    assert dm.datasets["train"].identity_names == ["Ann_Lee", "Bo_Ek"]
    csv = tmp_path / "kp.csv"  # two keypoints at the white square's corners
    csv.write_text(",0,1,2,3\n" + "".join(f"{f.name},30,10,39,19\n" for f in sorted(flat.iterdir())))
    kp = _dm(flat, layout="regex", val_fraction=0, test_fraction=0, crop="keypoints", keypoints_file=str(csv),
             crop_scale=1.0)
    kp.setup()
    img = kp.datasets["train"][0]["image"]
    assert img.min() > 0.9  # the crop is the white square only (keypoint box, scale 1)
    full = dm.datasets["train"][0]["image"]  # full image: square around all of it, zero padded above/below
    assert full.shape == (3, 16, 16) and float(full.mean()) < -0.8
    lst = tmp_path / "list.csv"
    lst.write_text("path,identity,x,y,w,h\n" + "".join(f"{f.name},{f.stem[:3]},30,10,10,10\n"
                                                       for f in sorted(flat.iterdir())))
    bx = _dm(flat, layout="list", list_file=str(lst), box_columns=["x", "y", "w", "h"], crop="box", crop_scale=1.0,
             val_fraction=0, test_fraction=0)
    bx.setup()
    assert bx.datasets["train"].identity_names == ["Ann", "Bo_"]
    assert bx.datasets["train"][4]["image"][:, 1:-1, 1:-1].min() > 0.9  # border pixels blend bilinearly


def test_grayscale_and_augment(tmp_path):
    root = _tree(tmp_path / "d", [4] * 6)
    dm = _dm(root, channels=1, val_fraction=0, test_fraction=0,
             augment={"flip": 1.0, "shift": 0.1, "rotation": 0.0, "brightness": 0.1, "contrast": 0.1})
    dm.setup()
    s = dm.datasets["train"][0]
    check_sample(s, "identities")
    assert s["image"].shape == (1, 16, 16)
    with pytest.raises(ValueError, match="augment.jitter=1 is invalid: not a key of the light recipe; expected one of shift, rotation"):
        _dm(root, augment={"jitter": 1}, val_fraction=0, test_fraction=0).setup()


def test_pk_sampler_through_datamodule(tmp_path):
    root = _tree(tmp_path / "d", [6] * 12)
    dm = _dm(root, val_fraction=0.2, test_fraction=0, batch_size=12, sampler=functools.partial(PKSampler, k=3))
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (12, 3, 16, 16)
    assert sorted(np.bincount(batch["identity"].numpy()).tolist())[-4:] == [3, 3, 3, 3]
    assert dm.state_dict()["train_sampler"]["position"] == 1


# ---------------------------------------------------------------------------------------------- bad input
def test_empty_folder_and_empty_dataset(tmp_path):
    root = _tree(tmp_path / "d", [3, 3, 3])
    (root / "ghost").mkdir()
    with pytest.raises(ValueError, match="ghost: identity folder holds no images"):
        _dm(root, val_fraction=0, test_fraction=0).setup()
    dm = _dm(root, val_fraction=0, test_fraction=0, on_bad_sample="skip")
    with pytest.warns(UserWarning, match="skipped 1 identity folders without images"):
        dm.setup()
    assert dm.info.num_identities == 3
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        _dm(tmp_path / "none").setup()
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        _dm(tmp_path / "missing").setup()
    with pytest.raises(ValueError, match="empty identity dataset"):
        IdentityDataset([])


def test_unreadable_image_error_and_skip(tmp_path):
    root = _tree(tmp_path / "d", [3, 3])
    (root / "id01" / "img1.png").write_bytes(b"garbage")
    dm = _dm(root, val_fraction=0, test_fraction=0)
    dm.setup()
    ds = dm.datasets["train"]
    bad = [str(f) for f in ds.files].index(str(root / "id01" / "img1.png"))
    with pytest.raises(ValueError, match=r"img1.png: cannot decode.*on_bad_sample=skip"):
        ds[bad]
    dm = _dm(root, val_fraction=0, test_fraction=0, on_bad_sample="skip")
    dm.setup()
    ds = dm.datasets["train"]
    with pytest.warns(UserWarning, match="unreadable image .*img1.png replaced"):
        s = ds[bad]
    assert int(s["identity"]) == ds.identities[bad] and len(ds.bad_files) == 1
    # verify_images removes it at setup instead, with a count
    dm = _dm(root, val_fraction=0, test_fraction=0, on_bad_sample="skip", verify_images=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable images"):
        dm.setup()
    assert len(dm.datasets["train"]) == 5
    with pytest.raises(ValueError, match="img1.png: cannot decode"):
        _dm(root, val_fraction=0, test_fraction=0, verify_images=True).setup()


def test_single_image_identity_and_min_images(tmp_path):
    root = _tree(tmp_path / "d", [1, 5, 5, 5])
    dm = _dm(root, val_fraction=0, test_fraction=0, batch_size=10, sampler=functools.partial(PKSampler, k=5))
    with pytest.raises(ValueError, match="'id00'.*small_identities=skip"):
        dm.train_dataloader()
    dm = _dm(root, val_fraction=0, test_fraction=0, min_images_per_identity=2)
    with pytest.warns(UserWarning, match="dropped 1 identities \\(1 images\\)"):
        dm.setup()
    assert dm.info.num_identities == 3


def test_regex_and_list_bad_rows(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("Ann_01", "Ann_02", "noframe"):
        cv2.imwrite(str(flat / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="noframe.*does not match data.name_regex"):
        _dm(flat, layout="regex", val_fraction=0, test_fraction=0).setup()
    lst = tmp_path / "l.csv"
    lst.write_text("path,identity\nAnn_01.png,a\nAnn_02.png,a\ngone.png,b\n")
    with pytest.raises(FileNotFoundError, match=r"l.csv:4: image .*gone.png does not exist"):
        _dm(flat, layout="list", list_file=str(lst), val_fraction=0, test_fraction=0).setup()
    with pytest.raises(ValueError, match="identity_column='who' is not a column"):
        _dm(flat, layout="list", list_file=str(lst), identity_column="who", val_fraction=0, test_fraction=0).setup()
    with pytest.raises(ValueError, match="data.layout=.tree. is invalid: unknown choice"):
        _dm(flat, layout="tree")
    with pytest.raises(ValueError, match="no training identity"):
        _dm(_tree(tmp_path / "t", [2, 2, 2]), val_fraction=0.5, test_fraction=0.5).setup()


# ---------------------------------------------------------------------------------------------- real data
def _sub(shared_data, name):
    p = shared_data / name
    if not p.exists():
        pytest.skip(f"{p} is absent (real data lives beside the repo only on the project's machines)")
    return p


def test_johns(shared_data):
    root = _sub(shared_data, "johns")
    dm = _dm(root, val_fraction=0.4, test_fraction=0, image_size=96, batch_size=30, num_pairs=220,
             sampler=functools.partial(PKSampler, k=10))
    dm.setup()
    tr, va = dm.datasets["train"], dm.datasets["val"]
    assert dm.datasets["test"] is None
    assert (tr.num_identities, va.num_identities, len(tr), len(va)) == (3, 2, 33, 22)
    assert not _names(tr) & _names(va)
    check_sample(tr[0], "identities")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (30, 3, 96, 96) and batch["image"].abs().max() <= 1
    pairs = dm.pairs("val")
    assert sum(s for _, _, s in pairs) == 110  # all C(11,2) * 2 genuine pairs of the 2 val identities
    assert all((va.identities[i] == va.identities[j]) == s for i, j, s in pairs)


def test_ytf_keypoints(shared_data):
    root = _sub(shared_data, "ytf_keypoints")
    dm = _dm(root / "training", layout="regex", crop="keypoints", image_size=64,
             keypoints_file=str(root / "training_frames_keypoints.csv"), num_pairs=1000)
    dm.setup()
    ds = {s: dm.datasets[s] for s in ("train", "val", "test")}
    assert sum(d.num_identities for d in ds.values()) == 347 and sum(len(d) for d in ds.values()) == 3452
    assert not (_names(ds["train"]) & _names(ds["val"])) and not (_names(ds["train"]) & _names(ds["test"]))
    for d in ds.values():
        for i in range(0, len(d), 97):  # identity = file name without the trailing frame number
            assert d.files[i].stem.rsplit("_", 1)[0] == d.identity_names[d.identities[i]]
    check_sample(ds["test"][5], "identities")
    pairs = dm.pairs("test")
    assert len(pairs) == 1000 and sum(s for _, _, s in pairs) == 500
    assert all((ds["test"].identities[i] == ds["test"].identities[j]) == s for i, j, s in pairs)
    al = _dm(root / "training", layout="regex", crop="aligned", image_size=64,
             keypoints_file=str(root / "training_frames_keypoints.csv"))
    al.setup()
    t = al.datasets["test"]
    assert t.files == ds["test"].files  # the same split; the crop differs
    rows = {}  # the CSV read by hand: filename, x0, y0, x1, y1, ...
    for line in (root / "training_frames_keypoints.csv").read_text().splitlines()[1:]:
        f, *v = line.split(",")
        rows[f] = np.asarray(v, np.float64).reshape(68, 2)
    p = rows[t.files[3].name]  # eye centres (points 36-41, 42-47), nose tip 30, mouth corners 48, 54
    np.testing.assert_allclose(t.points[3], [p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]], atol=1e-4)
    check_sample(t[3], "identities")
    with pytest.raises(ValueError, match="data.keypoints_file.*data.crop=aligned needs it"):
        _dm(root / "training", layout="regex", crop="aligned")
    half = _dm(root / "training", layout="regex", train_fraction=0.5)
    half.setup()
    assert half.info.num_identities == ds["train"].num_identities
    assert len(ds["train"]) * 0.5 <= len(half.datasets["train"]) <= len(ds["train"]) * 0.6
