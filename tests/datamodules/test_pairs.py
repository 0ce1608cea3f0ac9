"""Split pair sets: LFW pairs.txt mapped to dataset indices (with errors naming line and file), generated folds."""
from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from zoo.datamodules.identity import IdentityDataModule


def _lfw_tree(root, people):
    for name, n in people.items():
        (root / name).mkdir(parents=True)
        for k in range(1, n + 1):
            cv2.imwrite(str(root / name / f"{name}_{k:04d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    return root


def test_pairs_file_maps_to_split_indices(tmp_path):
    train = _lfw_tree(tmp_path / "casia", {f"P{i}": 3 for i in range(6)})
    lfw = _lfw_tree(tmp_path / "lfw", {"Ann_Lee": 3, "Bo_Ek": 2, "Cy_Do": 1})
    pf = tmp_path / "pairs.txt"
    pf.write_text("2 1\nAnn_Lee 1 3\nAnn_Lee 2 Cy_Do 1\nBo_Ek 1 2\nBo_Ek 2 Ann_Lee 1\n")
    dm = IdentityDataModule(root=str(train), val_fraction=0, test_fraction=0, val_root=str(lfw),
                            pairs_files={"val": str(pf)}, num_workers=0, image_size=8)
    dm.setup()
    val = dm.datasets["val"]
    assert dm.info.num_identities == 6 and len(val) == 6
    got = dm.pairs("val", with_folds=True)
    where = {f.name: i for i, f in enumerate(val.files)}
    assert got == [(where["Ann_Lee_0001.jpg"], where["Ann_Lee_0003.jpg"], True, 0),
                   (where["Ann_Lee_0002.jpg"], where["Cy_Do_0001.jpg"], False, 0),
                   (where["Bo_Ek_0001.jpg"], where["Bo_Ek_0002.jpg"], True, 1),
                   (where["Bo_Ek_0002.jpg"], where["Ann_Lee_0001.jpg"], False, 1)]
    assert dm.pairs("val") == [p[:3] for p in got]

    pf.write_text("2 1\nAnn_Lee 1 4\nAnn_Lee 2 Cy_Do 1\nBo_Ek 1 2\nBo_Ek 2 Ann_Lee 1\n")
    dm = IdentityDataModule(root=str(train), val_fraction=0, test_fraction=0, val_root=str(lfw),
                            pairs_files={"val": str(pf)}, num_workers=0)
    with pytest.raises(FileNotFoundError, match=r"pairs.txt:2: pair names Ann_Lee 4, but .*Ann_Lee_0004.jpg does not exist"):
        dm.pairs("val")


def test_pairs_file_naming_a_file_of_another_split(tmp_path):
    root = _lfw_tree(tmp_path / "d", {f"P{i}": 3 for i in range(10)})
    dm = IdentityDataModule(root=str(root), val_fraction=0.2, test_fraction=0, num_workers=0)
    dm.setup()
    val_names = sorted({dm.datasets["val"].identity_names[i] for i in dm.datasets["val"].identities})
    train_name = dm.datasets["train"].identity_names[0]
    a, b = val_names
    pf = tmp_path / "pairs.txt"
    pf.write_text(f"1 1\n{a} 1 2\n{a} 1 {train_name} 1\n")
    dm = IdentityDataModule(root=str(root), val_fraction=0.2, test_fraction=0, num_workers=0,
                            pairs_files={"val": str(pf)})
    with pytest.raises(ValueError, match=rf"pairs.txt:3: .*{train_name}_0001.jpg exists but is not part of the 'val' split"):
        dm.pairs("val")
    with pytest.raises(ValueError, match="split 'test' is empty"):
        dm.pairs("test")
    with pytest.raises(ValueError, match="data.pairs_files=.* is invalid: unknown choice"):
        IdentityDataModule(root=str(root), pairs_files={"validation": str(pf)})


def test_generated_pairs_have_lfw_folds(tmp_path):
    root = _lfw_tree(tmp_path / "d", {f"P{i}": 4 for i in range(30)})
    dm = IdentityDataModule(root=str(root), val_fraction=0.5, test_fraction=0, num_workers=0, num_pairs=100,
                            pair_folds=5)
    pairs = dm.pairs("val", with_folds=True)
    ids = dm.datasets["val"].identities
    assert Counter((f, s) for _, _, s, f in pairs) == {(f, s): 10 for f in range(5) for s in (True, False)}
    assert all((ids[i] == ids[j]) == s for i, j, s, _ in pairs)
    assert dm.pairs("val", with_folds=True) is not pairs and dm.pairs("val", with_folds=True) == pairs
