"""FaceDataModule's DataLoader settings (LoaderSettings) and the 0-training-batch guard, on a tiny in-memory datamodule."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.utils.data import RandomSampler

from zoo.datamodules.base import FaceDataModule, LoaderSettings
from zoo.datamodules.samplers.lpbb import LPBBSampler
from zoo.datamodules.samplers.uniform import UniformSampler
from zoo.datamodules.samples import DataInfo


class Tiny(FaceDataModule):
    def __init__(self, n: int = 10, **kw) -> None:
        super().__init__(**kw)
        self.n = n

    def build_datasets(self):
        data = [{"image": torch.zeros(1, 2, 2), "identity": torch.tensor(i % 2), "index": torch.tensor(i)}
                for i in range(self.n)]
        return {"train": data, "val": data[:3], "test": None}

    def data_info(self) -> DataInfo:
        return DataInfo(task="identities", image_size=2, channels=1, num_identities=2)


def test_settings_reach_every_loader():
    dm = Tiny(batch_size=4, eval_batch_size=3, num_workers=0, seed=5, persistent_workers=True)
    train = dm.train_dataloader()
    assert train.batch_size == 4 and train.drop_last and train.num_workers == 0
    assert not train.persistent_workers  # only meaningful with workers
    assert isinstance(train.sampler, RandomSampler)
    assert [len(b["index"]) for b in train] == [4, 4]  # 10 samples, the last 2 dropped
    val = dm.val_dataloader()
    assert val.batch_size == 3 and [len(b["index"]) for b in val] == [3]
    assert dm.test_dataloader() == []
    assert (dm.batch_size, dm.eval_batch_size, dm.seed) == (4, 3, 5)
    assert LoaderSettings(num_workers=2).kwargs(8) == {"num_workers": 2, "pin_memory": False,
                                                        "persistent_workers": True, "batch_size": 8}


@pytest.mark.parametrize("kw, key", [(dict(batch_size=0), "data.batch_size=0"), (dict(num_workers=-1), "data.num_workers"),
                                     (dict(drop_last="no"), "data.drop_last"), (dict(eval_batch_size=0), "data.eval_batch_size"),
                                     (dict(batchsize=8), "data.batchsize=8 is invalid: unknown key for Tiny")])
def test_bad_settings_name_the_key(kw, key):
    with pytest.raises(ValueError, match=key):
        Tiny(**kw)


def test_zero_training_batches_refused_at_setup_and_with_the_sampler():
    with pytest.raises(ValueError, match=r"data.batch_size=16 is invalid: the training split has 10 samples.*<= 10"):
        Tiny(batch_size=16, num_workers=0).setup("fit")
    Tiny(batch_size=16, num_workers=0, drop_last=False).setup("fit")  # one short batch is fine then
    Tiny(batch_size=16, num_workers=0).setup("test")  # evaluation does not train
    # the sampler's own epoch length counts once it is built (LPBB num_samples)
    dm = Tiny(batch_size=4, num_workers=0, sampler=partial(LPBBSampler, num_samples=3))
    dm.setup("fit")  # the split is large enough; the sampler is not
    with pytest.raises(ValueError, match="data.batch_size=4.*LPBBSampler yields 3 samples per epoch per rank"):
        dm.train_dataloader()
    ok = Tiny(batch_size=5, num_workers=0, sampler=partial(UniformSampler))
    assert [len(b["index"]) for b in ok.train_dataloader()] == [5, 5]
