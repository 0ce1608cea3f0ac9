"""Augmentation recipes: parameter ranges, photometric transforms by hand, landmarks stay on drawn dots,
flip with the left/right permutation, per-worker determinism."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.datamodules.crop import CropGeometry, flip_landmarks
from zoo.datamodules.landmark_datasets import LandmarkDataset
from zoo.datamodules.transforms import Contrast, LandmarkAugment, Occlusion, fuhl2019, light, none
from zoo.io.records import LandmarkRecord
from zoo.schemes import get_scheme

SCHEME = get_scheme("ibug68")


def test_fuhl2019_geometry_ranges():
    aug = fuhl2019()
    aug.reseed(1)
    g = [aug.sample_geometry() for _ in range(2000)]
    shifts = np.array([x.shift for x in g])
    angles = np.array([x.angle for x in g])
    assert np.abs(shifts).max() <= 0.2 and np.abs(shifts).max() > 0.19
    assert np.abs(angles).max() <= 1.0 and angles.min() < -0.95 and angles.max() > 0.95
    assert 0.45 < np.mean([x.flip for x in g]) < 0.55 and all(x.zoom == 1.0 for x in g)
    assert [type(t).__name__ for t in aug.compose.transforms] == ["Contrast", "GaussianBlur", "Occlusion", "AdditiveNoise"]
    assert none() is None and light().flip == 0.5


def test_bad_recipe_values():
    with pytest.raises(ValueError, match="augment.shift"):
        LandmarkAugment(shift=1.5)
    with pytest.raises(ValueError, match="augment.flip"):
        LandmarkAugment(flip=2)
    with pytest.raises(ValueError, match="occlusion fills"):
        Occlusion(fills=("pink",))


def test_contrast_by_hand():
    img = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    out = Contrast(limit=30).apply(img, c=30.0)
    f = 1 + 60 / 255  # black and white move out by 30 grey levels
    expected = np.clip(np.rint((img.astype(float) - 127.5) * f + 127.5), 0, 255)
    assert out.tolist() == expected.tolist() and out[0, 1] == 94 and out[0, 0] == 0
    assert Contrast(limit=30).apply(img, c=-30.0)[0, 0] == 30  # 0 -> 30: compressed by 30 levels


def test_occlusion_area_and_grey_values():
    occ = Occlusion(max_area=0.5, p=1.0)
    occ.set_random_seed(0)
    seen = set()
    for _ in range(300):
        p = occ.get_params_dependent_on_data({"shape": (96, 96)}, {})
        x0, y0, w, h = p["rect"]
        assert 0 <= x0 and x0 + w <= 96 and 0 <= y0 and y0 + h <= 96
        assert w * h <= 0.5 * 96 * 96 * 1.03  # up to half the image (rounding)
        v = p["value"]
        seen.add("dark" if v <= 30 else "bright" if v >= 200 else "mid")
        out = occ.apply(np.full((96, 96), 7, np.uint8), **p)
        assert (out[y0:y0 + h, x0:x0 + w] == v).all() and (out == v).sum() >= w * h
    assert seen == {"dark", "bright", "mid"}


def test_photometric_keeps_shape_and_landmarks():
    aug = fuhl2019(p=1.0)
    img = np.full((96, 96), 128, np.uint8)
    pts = np.array([[3.0, 4.0], [50.5, 60.25]], np.float32)
    out, kp = aug.photometric(img, pts)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    np.testing.assert_array_equal(kp, pts)


def _dot_record(tmp_path: Path, rng) -> LandmarkRecord:
    """A 240x240 black image with a bright 3x3 dot at each of 68 well separated landmark pixels."""
    grid = [(x, y) for y in range(60, 190, 16) for x in range(56, 190, 16)]
    pick = rng.choice(len(grid), 68, replace=False)
    pts = np.array([grid[i] for i in pick], np.float32) + rng.integers(-2, 3, size=(68, 2))
    img = np.zeros((240, 240), np.uint8)
    for x, y in pts.astype(int):
        img[y - 1:y + 2, x - 1:x + 2] = 255
    cv2.imwrite(str(tmp_path / "dots.png"), img)
    return LandmarkRecord(image=tmp_path / "dots.png", landmarks=pts, key="dots", source="dots", origin="dots")


def test_geometric_augmentation_keeps_landmarks_on_dots(tmp_path):
    rec = _dot_record(tmp_path, np.random.default_rng(0))
    aug = LandmarkAugment(shift=0.2, rotation=1.0, zoom=(0.9, 1.1), flip=0.5)  # geometric only
    ds = LandmarkDataset([rec], SCHEME, image_size=128, crop_scale=1.3, augment=aug)
    flips = 0
    for trial in range(12):
        s = ds[0]
        img = s["image"][0].numpy()
        pts = s["landmarks"].numpy()
        checked = 0
        for x, y in pts:
            xi, yi = int(round(x)), int(round(y))
            if not (3 <= xi < 125 and 3 <= yi < 125):
                continue  # moved out of the crop: still labelled, nothing to see
            win = img[yi - 2:yi + 3, xi - 2:xi + 3]
            assert win.max() > 0.5, (trial, x, y)
            wy, wx = np.mgrid[-2:3, -2:3]
            cx, cy = (win * wx).sum() / win.sum() + xi, (win * wy).sum() / win.sum() + yi
            assert abs(cx - x) < 0.6 and abs(cy - y) < 0.6, (trial, x, y, cx, cy)
            checked += 1
        assert checked > 20
        assert s["visible"].all()
    # flips happened and point order follows the permutation: dataset flip == mirror of the unflipped crop
    crop, pts, norm = ds.crop(0, CropGeometry(angle=0.3))
    fcrop, fpts, fnorm = ds.crop(0, CropGeometry(angle=0.3, flip=True))  # the flip acts after the rotation
    diff = int(np.abs(fcrop.astype(int) - np.fliplr(crop).astype(int)).max())
    assert diff <= 1, diff
    np.testing.assert_allclose(fpts, flip_landmarks(pts, 128, SCHEME.flip_permutation), atol=1e-3)
    assert fnorm == pytest.approx(norm)


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, ds, n):
        self.ds, self.n = ds, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.ds[0]


def test_worker_seeding_is_deterministic_and_differs_per_worker(tmp_path):
    rec = _dot_record(tmp_path, np.random.default_rng(1))
    ds = LandmarkDataset([rec], SCHEME, image_size=32, augment=fuhl2019())

    def run():
        torch.manual_seed(123)
        loader = DataLoader(_Repeat(ds, 8), batch_size=2, num_workers=2)
        return [b["landmarks"] for b in loader], [b["image"] for b in loader][:1]

    (a, ia), (b, ib) = run(), run()
    for x, y in zip(a + ia, b + ib):
        assert torch.equal(x, y)
    # batches 0 and 1 come from workers 0 and 1: different augmentation streams
    assert not torch.allclose(a[0], a[1])
    # in the main process: reproducible from torch's seed
    torch.manual_seed(5)
    ds.augment._zoo_seeded_pid = None
    first = ds[0]["landmarks"]
    ds.augment._zoo_seeded_pid = None
    torch.manual_seed(5)
    assert torch.equal(first, ds[0]["landmarks"])


def _many_dot_records(tmp_path, n):
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        d = tmp_path / f"r{i}"
        d.mkdir()
        out.append(_dot_record(d, rng))
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_sampler_draws_augment_the_same_whatever_the_worker_or_resume_point(tmp_path, workers):
    """Exact mid-epoch resume of augmentation: a zoo sampler's draws carry their own seed, so the crops of the
    epoch's second half are the same whether the epoch ran whole (in 0 or 2 workers) or was resumed at its
    middle by a new sampler + loader (different worker assignment, fresh worker processes)."""
    from zoo.datamodules.samplers.uniform import UniformSampler

    ds = LandmarkDataset(_many_dot_records(tmp_path, 12), SCHEME, image_size=32, augment=fuhl2019())

    def images(sampler, num_workers):
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=num_workers)
        batches = list(loader)
        return torch.cat([b["image"] for b in batches]), torch.cat([b["index"] for b in batches])

    whole = UniformSampler(ds, batch_size=2, seed=3)
    whole.set_epoch(1)
    ref_img, ref_idx = images(whole, 0)
    torch.manual_seed(999)  # the global stream must not matter
    resumed = UniformSampler(ds, batch_size=2, seed=3)
    resumed.load_state_dict({**whole.state_dict(), "epoch": 1, "position": 6})
    img, idx = images(resumed, workers)
    assert torch.equal(idx, ref_idx[6:]) and torch.equal(img, ref_img[6:])
    # and the augmentation is on: the same record in two epochs is cropped differently
    other = UniformSampler(ds, batch_size=2, seed=3)
    other.set_epoch(2)
    img2, idx2 = images(other, 0)
    first = {int(i): x for i, x in zip(idx2, img2)}
    assert any(not torch.equal(first[int(i)], x) for i, x in zip(ref_idx, ref_img))


def test_draw_pickles_with_its_seed_and_seeds_differ_per_position():
    import pickle

    from zoo.datamodules.samplers._common import Draw, draw_seed, draws

    d = pickle.loads(pickle.dumps(Draw(5, 123)))
    assert type(d) is Draw and int(d) == 5 and d.seed == 123 and [10, 20, 30][Draw(1, 0)] == 20
    seeds = {draw_seed(0, e, r, p) for e in range(3) for r in range(2) for p in range(200)}
    assert len(seeds) == 3 * 2 * 200 and all(0 <= s < 2**63 for s in seeds)
    assert [x.seed for x in draws([4, 4], 0, 1, 0, 10)] == [draw_seed(0, 1, 0, 10), draw_seed(0, 1, 0, 11)]
