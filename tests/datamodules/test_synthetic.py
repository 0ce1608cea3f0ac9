import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.datamodules.samples import check_sample
from zoo.datamodules.synthetic import Synthetic3DMMDataModule


def _dm(**kw):
    args = dict(num_identities=6, images_per_identity=3, val_identities=2, test_identities=2, image_size=48,
                batch_size=4, num_workers=0)
    args.update(kw)
    return Synthetic3DMMDataModule(**args)


def test_landmark_samples_follow_contract():
    dm = _dm()
    dm.setup()
    info = dm.info
    assert info.task == "landmarks" and info.channels == 1 and info.num_landmarks == 68 and info.scheme == "ibug68"
    assert info.sizes == {"train": 18, "val": 6, "test": 6}
    s = dm.datasets["train"][4]
    check_sample(s, "landmarks")
    assert s["image"].shape == (1, 48, 48) and 0 <= s["image"].min() and s["image"].max() <= 1
    assert s["index"].item() == 4 and s["identity"].item() == 1  # index = identity * K + k
    assert s["light"].shape == (27,) and s["expression"].shape == (3,)
    assert -90 <= s["yaw"].item() <= 90 and -30 <= s["pitch"].item() <= 30 and -15 <= s["roll"].item() <= 15
    lm = s["landmarks"][s["visible"]]
    assert torch.isclose(s["norm"], torch.linalg.norm(s["landmarks"][36] - s["landmarks"][45]))
    assert (lm >= -0.5).all() and (lm <= 47.5).all()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 48, 48) and batch["landmarks"].shape == (4, 68, 2)


def test_identity_samples_and_pairs():
    dm = _dm(task="identities", grayscale=False, num_pairs=12, pair_folds=2)
    dm.setup()
    info = dm.info
    assert info.task == "identities" and info.num_identities == 6 and info.channels == 3
    ds = dm.datasets["train"]
    check_sample(ds[5], "identities")
    np.testing.assert_array_equal(ds.identities, np.repeat(np.arange(6), 3))
    assert ds[5]["identity"].item() == 1
    pairs = dm.pairs("val")
    assert pairs and all(0 <= i < 6 and 0 <= j < 6 for i, j, _ in pairs)
    vds = dm.datasets["val"]
    assert any(same for _, _, same in pairs) and not all(same for _, _, same in pairs)
    for i, j, same in pairs[:6]:
        assert same == (vds.identities[i] == vds.identities[j])


def test_splits_hold_different_identities_and_workers_agree():
    dm = _dm()
    dm.setup()
    tr, va = dm.datasets["train"], dm.datasets["val"]
    assert not np.array_equal(tr.params(0)["shape"], va.params(0)["shape"])
    direct = torch.stack([tr[i]["image"] for i in range(6)])
    loader = DataLoader(tr, batch_size=3, num_workers=2, shuffle=False)
    via_workers = torch.cat([b["image"] for b, _ in zip(loader, range(2))])
    torch.testing.assert_close(direct, via_workers, rtol=0, atol=0)


def test_bad_config_values(tmp_path):
    with pytest.raises(ValueError, match="yaw.*min"):
        _dm(yaw=[20, -20])
    with pytest.raises(ValueError, match="image_size"):
        _dm(image_size=0)
    with pytest.raises(ValueError, match="data.task"):
        _dm(task="pose")
    with pytest.raises(ValueError, match="data.model"):
        _dm(model="flame")
    with pytest.raises(ValueError, match="data.num_identities"):
        _dm(num_identities=0)
    with pytest.raises(ValueError, match=f"{tmp_path}.*holds no images"):
        _dm(background="folder", background_path=str(tmp_path)).setup()
    with pytest.raises(ValueError, match="model_path"):
        _dm(model="sfm").setup()
