"""Bad-input suite, configuration (issue 13): bad ``data.*``, ``augment.*`` and ``sampler.*`` values, composed as
``python train.py ...`` composes them, fail before any training work with an error naming the key the user typed,
what was wrong and what was expected."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bad_input.naming import raises_naming
from zoo.datamodules.identity import IdentityDataModule
from zoo.datamodules.landmark_folders import LandmarkDataModule
from zoo.datamodules.samplers.lpbb import LPBBSampler
from zoo.datamodules.samplers.pk import PKSampler
from zoo.datamodules.samplers.uniform import UniformSampler
from zoo.datamodules.synthetic import Synthetic3DMMDataModule, split_sizes

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def composed(*overrides: str):
    """The train config as ``python train.py <overrides>`` composes it (no data is read)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=["paths.output_dir=/tmp/unused", "data.num_workers=0", *overrides])


# ---- data.* (synthetic default, so these run everywhere) ---------------------------------------------------------
def test_batch_size_larger_than_the_training_split():
    dm = instantiate(composed("data.num_identities=2", "data.images_per_identity=3", "data.batch_size=64").data)
    raises_naming(lambda: dm.setup("fit"), "data.batch_size=64", "the training split has 6 samples",
                  "0 training steps", "expected data.batch_size <= 6")


@pytest.mark.parametrize("override, key", [
    ("data.num_identities=-3", "data.num_identities=-3"),
    ("data.images_per_identity=-1", "data.images_per_identity=-1"),
    ("data.test_identities=-2", "data.test_identities=-2"),
    ("data.val_identities=1.5", "data.val_identities=1.5"),
    ("data.batch_size=0", "data.batch_size=0"),
    ("data.num_workers=-1", "data.num_workers=-1"),
    ("data.task=faces", "data.task='faces'"),
    ("data.norm=eyes", "data.norm='eyes'"),
    ("+data.batchsize=8", "data.batchsize=8"),
])
def test_synthetic_data_values(override, key):
    raises_naming(lambda: instantiate(composed(override).data), key, "is invalid", "expected")


def test_generate_and_train_share_the_size_check():
    # generate.py validates data.num_identities & co with the datamodule's own split_sizes
    raises_naming(lambda: split_sizes("landmarks", -3, 5), "data.num_identities=-3", "expected an integer >= 1")
    raises_naming(lambda: split_sizes("identities", 1, 5), "data.num_identities=1", "expected an integer >= 2")
    assert split_sizes("landmarks", 3, 2, 1, None, 0, 4) == {"train": (3, 2), "val": (1, 2), "test": (0, 4)}


# ---- augment.* ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, needles", [
    (["augment=fuhl2019", "augment.noise=5"], ["augment.noise=5", "expected a finite number in [0, 1]"]),
    (["augment=fuhl2019", "augment.rotation=500"], ["augment.rotation=500", "[0, 180.0]"]),
    (["augment=fuhl2019", "augment.rotation=[30,10]"], ["augment.rotation", "min > max"]),
    (["augment=fuhl2019", "augment.shift=2"], ["augment.shift=2", "[0, 1]"]),
    (["augment=fuhl2019", "augment.occlusion=1.5"], ["augment.occlusion=1.5"]),
    (["augment=fuhl2019", "augment.blur_sigma=[2,1]"], ["augment.blur_sigma", "min > max"]),
    (["augment=fuhl2019", "augment.p=2"], ["augment.p=2", "[0.0, 1.0]"]),
    (["augment=fuhl2019", "+augment.rotate=5"], ["augment.rotate=5", "not a key of the fuhl2019 recipe", "rotation"]),
    (["augment=light", "augment.flip=1.5"], ["augment.flip=1.5", "[0.0, 1.0]"]),
    (["augment=light", "augment.brightness=3"], ["augment.brightness=3", "[0, 1]"]),
    (["augment=light", "augment.zoom=[0,1]"], ["augment.zoom[0]=0", "(0.0, inf)"]),
])
def test_augment_values(overrides, needles):
    raises_naming(lambda: instantiate(composed(*overrides).augment), *needles)


def test_rotation_is_in_degrees():
    aug = instantiate(composed("augment=light", "augment.rotation=30").augment)
    angles = np.array([aug.sample_geometry().angle for _ in range(2000)])  # radians inside the crop warp
    assert np.abs(angles).max() <= np.radians(30) + 1e-12
    assert np.abs(angles).max() > np.radians(29)  # the whole +-30 deg range is used, not +-30 rad
    paper = instantiate(composed("augment=fuhl2019").augment)  # the paper's [-1, 1] rad
    assert np.allclose(paper.rotation, (-np.degrees(1.0), np.degrees(1.0)), atol=1e-4)


# ---- sampler.* ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, key", [
    (["sampler=lpbb", "sampler.temperature=0"], "sampler.temperature=0"),
    (["sampler=lpbb", "sampler.mode=bb"], "sampler.mode='bb'"),
    (["sampler=lpbb", "sampler.uniform_mix=2"], "sampler.uniform_mix=2"),
    (["sampler=lpbb", "sampler.initial_loss=min"], "sampler.initial_loss='min'"),
    (["sampler=lpbb", "sampler.num_samples=0"], "sampler.num_samples=0"),
    (["sampler=uniform", "sampler.drop_last=maybe"], "sampler.drop_last='maybe'"),
    (["sampler=pk", "sampler.k=0"], "sampler.k=0"),
    (["sampler=pk", "sampler.k=4", "sampler.small_identities=drop"], "sampler.small_identities='drop'"),
])
def test_sampler_values(overrides, key):
    factory = instantiate(composed(*overrides).sampler)
    raises_naming(lambda: factory(dataset=_Labels([4] * 8), batch_size=12, seed=0, rank=0, world_size=1), key,
                  "is invalid", "expected")


class _Labels:
    """An identity dataset without images: ``counts[i]`` images of identity i."""

    def __init__(self, counts: list[int]) -> None:
        self.identities = np.repeat(np.arange(len(counts)), counts)

    def __len__(self) -> int:
        return len(self.identities)


def test_pk_batch_size_not_a_multiple_of_k():
    raises_naming(lambda: PKSampler(_Labels([5] * 10), batch_size=64, k=15), "data.batch_size=64",
                  "not divisible by sampler.k=15", "e.g. 60")


def test_pk_skip_with_single_image_identities_says_lower_k():
    counts = [1] * 20 + [3] * 4 + [8] * 2  # 6 identities with >= 3 images, 2 with >= 4
    msg = raises_naming(lambda: PKSampler(_Labels(counts), batch_size=20, k=4, small_identities="skip"),
                        "sampler.k=4", "only 2 identities have >= k=4 images", "lower sampler.k",
                        "sampler.small_identities=replace")
    assert "raise sampler.k" not in msg
    assert "sampler.k=3 with data.batch_size=15" in msg  # 5 identities have >= 3 images: p=5 fits
    PKSampler(_Labels(counts), batch_size=15, k=3, small_identities="skip")  # the suggestion works


def test_resuming_lpbb_state_with_another_sampler():
    lpbb = LPBBSampler(range(10), batch_size=2)
    lpbb.update([1, 2], [0.5, 3.0])
    state = lpbb.state_dict()
    raises_naming(lambda: UniformSampler(range(10)).load_state_dict(state), "sampler='uniform'",
                  "trained with LPBBSampler (sampler=lpbb)", "loss table would be dropped", "sampler=lpbb")
    raises_naming(lambda: LPBBSampler(range(10)).load_state_dict(UniformSampler(range(10)).state_dict()),
                  "sampler='lpbb'", "trained with UniformSampler (sampler=uniform)")
    old = {k: v for k, v in state.items() if k != "sampler"}  # checkpoints written before states were named
    raises_naming(lambda: UniformSampler(range(10)).load_state_dict(old), "trained with LPBBSampler")


def test_resuming_lpbb_state_without_a_sampler(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(root / f"f{i}.png"), rng.integers(0, 255, (60, 60), dtype=np.uint8))
        body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in rng.uniform(10, 50, (68, 2)))
        (root / f"f{i}.pts").write_text(f"n_points: 68\n{{\n{body}\n}}\n")
    kw = dict(root=str(root), val_fraction=0.0, test_fraction=0.0, batch_size=2, num_workers=0)
    with_lpbb = LandmarkDataModule(sampler=partial(LPBBSampler), **kw)
    with_lpbb.train_dataloader()
    state = with_lpbb.state_dict()
    raises_naming(lambda: LandmarkDataModule(sampler=None, **kw).load_state_dict(state), "sampler=None",
                  "trained with LPBBSampler (sampler=lpbb)", "RandomSampler")
    plain = LandmarkDataModule(sampler=None, **kw)
    plain.train_dataloader()
    assert plain.state_dict() == {}  # plain shuffling keeps no state
    with pytest.warns(UserWarning, match="sampler: the checkpoint holds no sampler state.*LPBBSampler starts fresh"):
        LandmarkDataModule(sampler=partial(LPBBSampler), **kw).load_state_dict(plain.state_dict())


# ---- real-data datamodules (values checked in the constructor, no file read) -----------------------------------
@pytest.mark.parametrize("kw, needles", [
    (dict(format="hdf5"), ["data.format='hdf5'", "'pts_folder', 'csv', 'wflw'"]),
    (dict(val_fraction=0.6, test_fraction=0.5), ["data.val_fraction=0.6", "< 1"]),
    (dict(image_size=4), ["data.image_size=4", ">= 8"]),
    (dict(crop_scale=0), ["data.crop_scale=0"]),
    (dict(split_by="photo"), ["data.split_by='photo'", "'image', 'group', 'sample'"]),
    (dict(augment="fuhl2019"), ["data.augment='str'", "recipe"]),
])
def test_landmark_data_values(kw, needles):
    raises_naming(lambda: LandmarkDataModule(root="unused", num_workers=0, **kw), *needles)


@pytest.mark.parametrize("kw, needles", [
    (dict(layout="tree"), ["data.layout='tree'", "'folders', 'regex', 'list'"]),
    (dict(crop="keypoints"), ["data.keypoints_file=None", "data.crop=keypoints needs it"]),
    (dict(min_images_per_identity=0), ["data.min_images_per_identity=0"]),
    (dict(pairs_files={"dev": "p.txt"}), ["data.pairs_files='dev'", "'train', 'val', 'test'"]),
])
def test_identity_data_values(kw, needles):
    raises_naming(lambda: IdentityDataModule(root="unused", num_workers=0, **kw), *needles)


def test_synthetic_batch_size_checked_against_the_sampler_epoch():
    dm = Synthetic3DMMDataModule(num_identities=2, images_per_identity=4, val_identities=0, test_identities=0,
                                 num_workers=0, batch_size=4, sampler=partial(LPBBSampler, num_samples=3))
    raises_naming(dm.train_dataloader, "data.batch_size=4", "LPBBSampler yields 3 samples per epoch per rank")
