"""IdentityGanModel (seed 003 face synthesis): identity checkpoint checks, data checks, the loss wiring of the two
training steps, and a learning test on ../shared/data/johns."""
from __future__ import annotations

from types import SimpleNamespace

import lightning
import numpy as np
import pytest
import torch

from zoo.gan.identity import identity_loss, multiscale_reconstruction_loss
from zoo.models.identity_gan import IdentityGanModel

TINY = dict(image_size=32, width=8, max_width=32, attr_dim=16, attr_hidden=32, d_features=32, idgan_noise=8,
            idgan_hidden=16)


def recognition_ckpt(path, cls_name="FaceNetTriplet", embedding_dim=16, image_size=32, seed=0):
    """A zoo recognition checkpoint (random weights) as train.py writes it: state_dict, hyper-parameters, zoo entry."""
    from zoo.checkpoint import class_path, record
    from zoo.models import recognition

    torch.manual_seed(seed)
    cls = getattr(recognition, cls_name)
    kw = dict(backbone="nn4small", channels=3, image_size=image_size, embedding_dim=embedding_dim,
              channels_last=False)
    if cls_name == "ArcFaceModel":
        kw["num_identities"] = 4
    m = cls(**kw)
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams),
            "pytorch-lightning_version": lightning.__version__}
    record(ckpt, {}, cls)
    torch.save(ckpt, path)
    assert ckpt["zoo"]["model_class"] == class_path(cls)
    return str(path)


@pytest.fixture(scope="module")
def facenet_ckpt(tmp_path_factory):
    return recognition_ckpt(tmp_path_factory.mktemp("idgan") / "facenet.ckpt")


def test_encoder_is_the_checkpoint_frozen(facenet_ckpt):
    from zoo.models.recognition import FaceNetTriplet

    m = IdentityGanModel(identity_ckpt=facenet_ckpt, **TINY)
    ref = FaceNetTriplet.load_from_checkpoint(facenet_ckpt, weights_only=False).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m.train()
    assert not m.encoder.training and not any(p.requires_grad for p in m.encoder.parameters())
    torch.testing.assert_close(m.identity(x), ref(x)["embedding"])
    assert m.identity_dim == 16 and m.hparams.encoder_spec["class"].endswith("FaceNetTriplet")
    # a checkpoint of the identity GAN rebuilds without the identity checkpoint file (encoder spec + weights)
    m2 = IdentityGanModel(**{**dict(m.hparams), "identity_ckpt": "/nonexistent.ckpt"})
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(m2.eval().identity(x), ref(x)["embedding"])


def test_arcface_checkpoint_works(tmp_path):
    ck = recognition_ckpt(tmp_path / "arc.ckpt", "ArcFaceModel", embedding_dim=24)
    assert IdentityGanModel(identity_ckpt=ck, **TINY).identity_dim == 24


def test_bad_identity_checkpoints(tmp_path, facenet_ckpt):
    with pytest.raises(ValueError, match="model.identity_dim"):
        IdentityGanModel(identity_ckpt=facenet_ckpt, identity_dim=128, **TINY)
    with pytest.raises(ValueError, match="model.identity_ckpt.*not set"):
        IdentityGanModel(identity_ckpt=None, **TINY)
    not_zoo = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, not_zoo)
    with pytest.raises(ValueError, match="model.identity_ckpt.*not a zoo checkpoint"):
        IdentityGanModel(identity_ckpt=str(not_zoo), **TINY)
    landmark = tmp_path / "landmark.ckpt"
    torch.save({"state_dict": {}, "zoo": {"model_class": "zoo.models.landmark.LandmarkRegressor"}}, landmark)
    with pytest.raises(ValueError, match="model.identity_ckpt.*expected a zoo.models.recognition.EmbeddingModel"):
        IdentityGanModel(identity_ckpt=str(landmark), **TINY)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="model.identity_ckpt"):
        IdentityGanModel(identity_ckpt=str(text), **TINY)


def test_one_image_per_identity_is_refused(facenet_ckpt):
    m = IdentityGanModel(identity_ckpt=facenet_ckpt, **TINY)
    dm = SimpleNamespace(datasets={"train": SimpleNamespace(identities=np.arange(6))}, batch_size=8)
    m._trainer = SimpleNamespace(datamodule=dm)
    with pytest.raises(ValueError, match="one image per identity|at most 1 image"):
        m.check_identity_data()
    dm.datasets["train"].identities = np.zeros(6, np.int64)  # a single identity
    with pytest.raises(ValueError, match="at least 2 identities"):
        m.check_identity_data()
    dm.datasets["train"].identities = np.array([0, 0, 1, 1])
    m.check_identity_data()  # fine


def _grads(model):
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}


def test_step_one_gradients_follow_eqs_7_and_8(facenet_ckpt):
    """Eq. 7: A's gradient is that of L_GR + λ_KL L_KL only; Eq. 8: G's is L_GR + λ_GD L_GD + λ_GI L_GI. Checked
    against separate autograd.grad computations of each loss."""
    from zoo.gan.identity import feature_matching_loss, kl_loss

    torch.manual_seed(0)
    m = IdentityGanModel(identity_ckpt=facenet_ckpt, lambda_gi=3.0, lambda_gd=0.5, lambda_kl=0.1, **TINY).train()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ids = m.identity(x)
    torch.manual_seed(1)
    f_a, mu, lv = m.A(x)
    outs = m.G(ids, f_a)
    _, fr = m.D(x)
    _, ff = m.D(outs[-1])
    l_gr = multiscale_reconstruction_loss(x, outs)
    l_kl, l_gd, l_gi = kl_loss(mu, lv), feature_matching_loss(fr, ff), identity_loss(ids, m.identity(outs[-1]))
    a_params, g_params = list(m.A.parameters()), list(m.G.parameters())
    ref_a = torch.autograd.grad(l_gr + 0.1 * l_kl, a_params, retain_graph=True, allow_unused=True)
    ref_g = torch.autograd.grad(l_gr + 0.5 * l_gd + 3.0 * l_gi, g_params, retain_graph=True)
    # the model's two-pass scheme on the same graph
    for p in a_params + g_params:
        p.grad = None
    (0.5 * l_gd + 3.0 * l_gi).backward(retain_graph=True)
    for p in a_params:
        p.grad = None
    (l_gr + 0.1 * l_kl).backward()
    for p, r in zip(a_params, ref_a):
        torch.testing.assert_close(p.grad, r)
    for p, r in zip(g_params, ref_g):
        torch.testing.assert_close(p.grad, r)
    # and L_GI does reach A when not separated (so the check above can fail)
    assert any(g is not None and g.abs().sum() > 0 for g in
               torch.autograd.grad(identity_loss(ids, m.identity(m.G(ids, m.A(x)[0])[-1])), a_params,
                                   allow_unused=True))


def test_sample_grid_layout(facenet_ckpt):
    m = IdentityGanModel(identity_ckpt=facenet_ckpt, **TINY)
    grid = m.sample_grid(torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1)
    # (1 + 3) rows and (1 + 2) columns of 32 px cells with 2 px padding
    assert grid.shape == (4 * 34 + 2, 3 * 34 + 2, 3) and grid.dtype == np.uint8


@pytest.mark.slow
def test_learning_identity_falls_reconstruction_improves(tmp_path, facenet_ckpt):
    """Short run on johns (5 ids x 11, 3 training identities): identity loss (Eq. 1) and reconstruction (Eq. 4) of
    the training faces, measured with mu attributes in eval mode, fall clearly
    (measured: identity 0.75 -> 0.07 / 0.055, reconstruction 106 -> 80 / 78 after 10 / 40 epochs)."""
    _learning_check(tmp_path, facenet_ckpt, epochs=40, identity_ratio=0.3, reconstruction_ratio=0.8)


def _learning_check(tmp_path, ckpt, epochs, identity_ratio, reconstruction_ratio):
    from conftest import shared_path
    from zoo.datamodules.identity import IdentityDataModule

    root = shared_path("johns")
    dm = IdentityDataModule(root=str(root), layout="folders", val_fraction=0.4, test_fraction=0.0, image_size=32,
                            batch_size=8, num_workers=0, num_pairs=40, pair_folds=2)
    dm.setup("fit")
    ds = dm.datasets["train"]
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    torch.manual_seed(0)
    m = IdentityGanModel(identity_ckpt=ckpt, **{**TINY, "lr_ag": 1e-3, "lr_d": 1e-3})

    def measure():
        m.eval()
        with torch.no_grad():
            ids = m.identity(x)
            outs = m.G(ids, m.A(x, sample=False)[1])
            return identity_loss(ids, m.identity(outs[-1])).item(), multiscale_reconstruction_loss(x, outs).item()

    before = measure()
    trainer = lightning.Trainer(max_epochs=epochs,  # max_steps would count optimizer steps: 7 per batch
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                                default_root_dir=str(tmp_path))
    trainer.fit(m, datamodule=dm)
    after = measure()
    assert after[0] < identity_ratio * before[0], (before, after)
    assert after[1] < reconstruction_ratio * before[1], (before, after)
    return before, after


def test_learning_short(tmp_path, facenet_ckpt):
    """Fast version of the learning test (default suite): 10 epochs of 4 batches already lower both losses."""
    before, after = _learning_check(tmp_path, facenet_ckpt, epochs=10, identity_ratio=0.5,
                                    reconstruction_ratio=0.85)
    print("identity/reconstruction before", before, "after", after)
