"""Synthetic val/test splits rendered once (zoo.datamodules.eval_cache): cached samples and pairs equal freshly
rendered ones, the disk cache is reused by an equal configuration only, and identities are computed once per P×K
chunk, not per image."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import zoo.datamodules.eval_cache as eval_cache
from zoo.datamodules.synthetic import SPLIT_STREAMS, Synthetic3DMMDataModule, SyntheticFaceDataset

SMALL = dict(task="identities", num_identities=3, images_per_identity=2, val_identities=3, val_images_per_identity=3,
             test_identities=2, test_images_per_identity=2, image_size=24, grayscale=False, num_pairs=8,
             pair_folds=2, batch_size=4, num_workers=0)


def fresh_split(dm: Synthetic3DMMDataModule, split: str) -> SyntheticFaceDataset:
    """The split built independently of the datamodule's cache, from its public settings."""
    n, k = dm.sizes[split]
    return SyntheticFaceDataset(dm.task, dm.model, dm.gen_cfg, dm.seed, n, k, SPLIT_STREAMS[split], mean=dm.mean,
                                std=dm.std, norm=dm.norm)


def assert_same_samples(a, b) -> None:
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), (i, key)


@pytest.mark.parametrize("task", ["identities", "landmarks"])
def test_cached_split_equals_fresh_rendering_in_memory_and_from_disk(tmp_path, task):
    kw = {**SMALL, "task": task, "cache_dir": str(tmp_path)}
    dm = Synthetic3DMMDataModule(**kw)
    cached = dm.eval_dataset("val")
    assert isinstance(cached, eval_cache.CachedDataset)
    assert_same_samples(cached, fresh_split(dm, "val"))
    assert len(list(tmp_path.glob(f"{task}-val-*.pt"))) == 1
    # a new datamodule (the next run) with the same configuration reads the file: no rendering at all
    again = Synthetic3DMMDataModule(**kw)
    orig = eval_cache.render_all
    eval_cache.render_all = lambda *a, **k: pytest.fail("rendered again although the disk cache matches")
    try:
        from_disk = again.eval_dataset("val")
    finally:
        eval_cache.render_all = orig
    assert_same_samples(from_disk, fresh_split(again, "val"))
    # the loaders read the cache (in the main process); every batch equals the fresh samples
    loader = again.val_dataloader()
    assert loader.num_workers == 0
    batch = next(iter(loader))
    fresh = fresh_split(again, "val")
    for j, i in enumerate(batch["index"].tolist()):
        assert torch.equal(batch["image"][j], fresh[i]["image"])


def test_cached_pairs_equal_freshly_rendered_pairs(tmp_path):
    """The val pair set served from the cache: same pairs, and each pair's two images equal a fresh rendering."""
    dm = Synthetic3DMMDataModule(**SMALL, cache_dir=str(tmp_path))
    cached, fresh = dm.eval_dataset("val"), fresh_split(dm, "val")
    pairs = dm.pairs("val")
    from zoo.datamodules.pairs import generated_pairs

    assert [p[:3] for p in generated_pairs(fresh, dm.num_pairs, dm.pair_folds, dm.seed)] == pairs
    for i, j, same in pairs:
        assert torch.equal(cached[i]["image"], fresh[i]["image"]) and torch.equal(cached[j]["image"], fresh[j]["image"])
        assert same == (int(cached[i]["identity"]) == int(cached[j]["identity"]))
    np.testing.assert_array_equal(cached.identities, fresh.identities)


def test_key_covers_the_configuration(tmp_path):
    """Any setting that changes the images gives another file; an equal configuration the same one."""
    base = Synthetic3DMMDataModule(**SMALL, cache_dir=str(tmp_path))
    key = eval_cache.cache_key(base.split_description("val"))
    assert key == eval_cache.cache_key(Synthetic3DMMDataModule(**SMALL, cache_dir=str(tmp_path))
                                       .split_description("val"))
    for change in ({"light_scale": 0.5}, {"image_size": 28}, {"seed": 1}, {"val_identities": 4}, {"mean": 0.1},
                   {"grayscale": True}, {"yaw": (-10.0, 10.0)}, {"background": "uniform"}):
        other = Synthetic3DMMDataModule(**{**SMALL, **change, "cache_dir": str(tmp_path)})
        assert eval_cache.cache_key(other.split_description("val")) != key, change
    assert eval_cache.cache_key(base.split_description("test")) != key


def test_unreadable_cache_is_rendered_again_with_a_log_line(tmp_path, caplog):
    dm = Synthetic3DMMDataModule(**SMALL, cache_dir=str(tmp_path))
    dm.eval_dataset("test")
    (f,) = tmp_path.glob("identities-test-*.pt")
    f.write_bytes(b"truncated")
    again = Synthetic3DMMDataModule(**SMALL, cache_dir=str(tmp_path))
    with caplog.at_level("WARNING", logger="zoo.datamodules.disk_cache"):
        ds = again.eval_dataset("test")
    assert "unreadable" in caplog.text and str(f) in caplog.text
    assert_same_samples(ds, fresh_split(again, "test"))
    assert torch.load(f, weights_only=False)["payload"]["samples"]["image"].shape[0] == 4  # rewritten


def test_memory_and_none_modes(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    mem = Synthetic3DMMDataModule(**SMALL, eval_cache="memory")
    assert isinstance(mem.eval_dataset("val"), eval_cache.CachedDataset) and mem.eval_dataset("val") is \
        mem.eval_dataset("val")
    none = Synthetic3DMMDataModule(**SMALL, eval_cache="none")
    assert isinstance(none.eval_dataset("val"), SyntheticFaceDataset)
    assert not list(tmp_path.rglob("*.pt"))  # neither writes a file
    Synthetic3DMMDataModule(**SMALL).eval_dataset("val")  # default: disk, under $ZOO_CACHE_DIR/synthetic
    assert len(list((tmp_path / "synthetic").glob("identities-val-*.pt"))) == 1
    assert isinstance(mem.eval_dataset("train"), SyntheticFaceDataset)  # the training split is never cached


def test_bad_eval_cache_names_the_key():
    with pytest.raises(ValueError, match="data.eval_cache"):
        Synthetic3DMMDataModule(**SMALL, eval_cache="ram")


def test_unwritable_cache_dir_keeps_the_split_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    dm = Synthetic3DMMDataModule(**SMALL, cache_dir=str(blocker / "sub"))
    with pytest.warns(UserWarning, match="data.cache_dir"):
        ds = dm.eval_dataset("val")
    assert isinstance(ds, eval_cache.CachedDataset) and len(ds) == 9


def test_identity_shape_and_colour_once_per_pk_chunk(monkeypatch):
    """A P×K batch renders K images of each of P identities: the identity's shape and colour instances are
    computed once per identity in that chunk, not once per image."""
    from zoo.datamodules.samplers.pk import PKSampler

    dm = Synthetic3DMMDataModule(**{**SMALL, "num_identities": 4, "images_per_identity": 6, "batch_size": 6})
    dm.setup()
    ds = dm.datasets["train"]
    calls = {"shape": 0, "color": 0}
    model = ds.generator.model
    for name in ("shape", "color"):
        orig = getattr(model, f"{name}_instance")

        def counted(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)

        monkeypatch.setattr(model, f"{name}_instance", counted)
    batch = next(iter(PKSampler(ds, batch_size=6, k=3)))  # P = 2 identities × K = 3 images
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in batch:
            ds[i]
    assert calls == {"shape": 2, "color": 2}
