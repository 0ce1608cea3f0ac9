"""Recognition configs through Hydra + zoo.run.train, a train.py checkpoint through export, and a learning check."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import REPO, shared_path


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def johns_overrides(tmp_path) -> list[str]:
    root = shared_path("johns")
    return ["data=johns", f"data.root={root}", "data.num_workers=0", "sampler=pk", "logger=csv",
            f"paths.output_dir={tmp_path}", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@pytest.mark.parametrize("model", [
    ["model=facenet_triplet"],
    ["model=facenet_triplet", "model.miner=batch_hard", "model.flip_tta=true", "model/optimizer=sgd"],
    ["model=arcface", "model.backbone=resnet10t", "model.centre_lr=0.01"],
    ["model=cosface", "model.backbone=resnet10t"],
])
def test_fast_dev_run(tmp_path, model):
    from zoo.run import train

    cfg = compose_train(model + johns_overrides(tmp_path) + ["trainer.fast_dev_run=true"])
    res = train(cfg)
    m = res["model"]
    assert m.channels == 3 and m.image_size == 96  # filled from the datamodule's DataInfo
    if "arcface" in model[0] or "cosface" in model[0]:
        assert m.num_identities == res["datamodule"].info.num_identities == m.loss.weight.shape[0]
    assert not res["trainer"].interrupted


def test_one_epoch_on_ytf_reports_and_exports(tmp_path):
    """train.py path on YTF identities (held-out val/test identities): the best checkpoint (monitor: the model's
    default_monitor, val/eer) is tested, its report written, and it exports to TorchScript."""
    import json

    from zoo.export import export_checkpoint
    from zoo.run import train

    ytf = shared_path("ytf_keypoints")
    cfg = compose_train([
        "model=facenet_triplet", "data=ytf_identities", f"data.root={ytf}/training",
        f"data.keypoints_file={ytf}/training_frames_keypoints.csv", "data.num_workers=0", "data.image_size=48",
        "data.num_pairs=600", "sampler=pk", "sampler.k=6", "logger=csv", f"paths.output_dir={tmp_path}",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.max_epochs=1", "trainer.limit_train_batches=2"])
    res = train(cfg)
    best = res["best_model_path"]
    assert best and res["trainer"].checkpoint_callback.monitor == "val/eer"
    tm = res["test_metrics"]
    assert tm["test/num_pairs"] == 600
    # the reported metrics equal an independent computation on the best checkpoint's embeddings of the test
    # pairs: sklearn's ROC AUC and the EER where the ROC's FPR meets its FNR
    skm = pytest.importorskip("sklearn.metrics")

    from zoo.models.recognition import FaceNetTriplet

    best_model = FaceNetTriplet.load_from_checkpoint(best, map_location="cpu", weights_only=False).eval()
    dm = res["datamodule"]
    emb, idx = [], []
    with torch.no_grad():
        for batch in dm.test_dataloader():
            emb.append(best_model(batch["image"])["embedding"])
            idx.append(batch["index"])
    emb, idx = torch.cat(emb), torch.cat(idx)
    row = {int(i): r for r, i in enumerate(idx.tolist())}
    pairs = dm.pairs("test")
    a, b, same = map(np.asarray, zip(*pairs))
    scores = (emb[[row[int(i)] for i in a]] * emb[[row[int(i)] for i in b]]).sum(1).numpy()
    assert tm["test/auc"] == pytest.approx(skm.roc_auc_score(same.astype(int), scores), abs=1e-4)
    fpr, tpr, _ = skm.roc_curve(same.astype(int), scores)
    k = int(np.argmin(np.abs(fpr - (1 - tpr))))
    assert tm["test/eer"] == pytest.approx((fpr[k] + 1 - tpr[k]) / 2, abs=0.02)
    report = res["model"].write_report(tmp_path / "eval")
    assert report["accuracy"] == pytest.approx(tm["test/accuracy"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["eer"] == pytest.approx(tm["test/eer"])
    assert (tmp_path / "eval" / "roc.png").stat().st_size > 0 and (tmp_path / "eval" / "score_histogram.png").is_file()

    info = export_checkpoint(best, "torchscript", tmp_path / "emb.pt")
    x = torch.rand(3, 3, 48, 48) * 2 - 1
    model = res["model"].eval()
    with torch.no_grad():
        got = torch.jit.load(info["path"])(x)
        ref = model(x)["embedding"]
    assert float((got - ref).abs().max()) <= 1e-4


def test_embedder_separates_training_identities():
    """nn4small FaceNet, 60 P×K steps (5 identities × 4 images, 48 px) on johns: the eval-mode embeddings of the
    training images separate the identities (ROC AUC by scikit-learn over all pairs) far above the start."""
    from sklearn.metrics import roc_auc_score

    from zoo.datamodules.identity import IdentityDataModule
    from zoo.models.recognition import FaceNetTriplet

    dm = IdentityDataModule(root=str(shared_path("johns")), val_fraction=0.0, test_fraction=0.0, image_size=48,
                            num_workers=0)
    dm.setup()
    ds = dm.datasets["train"]
    items = [ds[i] for i in range(len(ds))]
    x = torch.stack([d["image"] for d in items])
    y = torch.stack([d["identity"] for d in items]).numpy()
    assert len(set(y.tolist())) == 5
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = FaceNetTriplet(backbone="nn4small", channels=3, image_size=48, channels_last=False,
                           optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    model.log = lambda *a, **k: None  # no trainer attached
    opt = model.configure_optimizers()

    def auc() -> float:
        model.eval()
        with torch.no_grad():
            e = model(x)["embedding"].numpy()
        model.train()
        iu = np.triu_indices(len(y), 1)
        return roc_auc_score((y[:, None] == y[None, :])[iu], (e @ e.T)[iu])

    before = auc()
    for step in range(60):
        b = np.concatenate([rng.choice(np.flatnonzero(y == c), 4, replace=False) for c in range(5)])
        out = model.training_step({"image": x[b], "identity": torch.as_tensor(y[b]), "index": torch.as_tensor(b)},
                                  step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    after = auc()
    assert before < 0.8 and after > 0.95, (before, after)


def test_identity_gan_train_py_run(tmp_path):
    """Wiring: python train.py model=identity_gan data=johns model.identity_ckpt=<zoo FaceNet ckpt> trains, validates,
    tests and writes the Fig. 7 grid (csv logger: a PNG in the log dir)."""
    from models.test_identity_gan import recognition_ckpt
    from zoo.run import train

    ck = recognition_ckpt(tmp_path / "facenet.ckpt", image_size=32)
    cfg = compose_train(["model=identity_gan", f"model.identity_ckpt={ck}", "model.image_size=32", "model.width=8",
                         "model.max_width=32", "model.grid_size=2"] + johns_overrides(tmp_path)[:-1]
                        + ["sampler=uniform", "data.image_size=32", "data.batch_size=8", "trainer.max_epochs=1",
                           "trainer.limit_train_batches=2", "trainer.enable_model_summary=false"])
    res = train(cfg)
    assert not res["trainer"].interrupted
    logged = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")  # csv logger's columns
    assert {"val/identity_loss", "val/reconstruction", "train/identity_loss_epoch"} <= set(logged), logged
    assert res["best_model_path"].endswith(".ckpt")
    grids = list(tmp_path.rglob("identity_grid_epoch000.png"))
    assert grids, "the sample grid callback wrote no grid"


def test_arcface_with_gan_identities(tmp_path):
    """Wiring: ArcFace trains on real + synthetic identities (data=gan_identities, sets generated from an identity-GAN
    checkpoint at setup); class centres = real + new identities; validation on the real held-out identities."""
    from datamodules.test_gan_identities import identity_gan_ckpt
    from models.test_identity_gan import recognition_ckpt
    from zoo.run import train

    ck = identity_gan_ckpt(tmp_path / "idgan.ckpt", recognition_ckpt(tmp_path / "facenet.ckpt", image_size=32))
    root = shared_path("johns")
    cfg = compose_train(["model=arcface", "model.backbone=resnet10t", "data=gan_identities", "data.base=johns",
                         f"+data.base_overrides={{root: '{root}', num_workers: 0}}", f"data.synthesis_ckpt={ck}",
                         f"data.sets_dir={tmp_path / 'sets'}", "data.filter=false", "data.new_identities=2",
                         "data.images_per_identity=2", "data.max_attempts=20",
                         "+data.thresholds={search: 1.3, ids: 1.0e-12, match: 2.0, unique: 1.0e-12}",
                         "data.num_workers=0", "sampler=pk", "logger=csv", f"paths.output_dir={tmp_path}",
                         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                         "trainer.fast_dev_run=true"])
    res = train(cfg)
    dm, m = res["datamodule"], res["model"]
    assert m.num_identities == dm.info.num_identities == dm.base.info.num_identities + 2
    assert not res["trainer"].interrupted
