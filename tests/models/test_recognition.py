"""FaceNetTriplet / ArcFaceModel: outputs, losses against brute-force references, centres, bad input."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from zoo.models.embedding_head import EmbeddingHead
from zoo.models.recognition import ArcFaceModel, FaceNetTriplet

SMALL = dict(backbone="nn4small", channels=3, image_size=32, channels_last=False)


def facenet(**kw):
    return FaceNetTriplet(**{**SMALL, **kw})


def arcface(**kw):
    return ArcFaceModel(**{**SMALL, "embedding_dim": 16, "num_identities": 4, **kw})


def pk_batch(p=3, k=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(p * k, 3, size, size, generator=g) * 2 - 1,
            "identity": torch.arange(p).repeat_interleave(k), "index": torch.arange(p * k) + 100}


# ---- embedding head -------------------------------------------------------------------------------------
def test_bn_dropout_fc_bn_matches_hand_computation_in_eval():
    torch.manual_seed(0)
    head = EmbeddingHead(6, 4, "bn_dropout_fc_bn", dropout=0.5)
    head.train()
    for _ in range(3):  # give the BNs non-trivial running statistics
        head(torch.randn(8, 6) * 3 + 1)
    head.eval()
    bn1, _, fc, bn2 = head.layers
    x = torch.randn(5, 6)
    h = (x - bn1.running_mean) / torch.sqrt(bn1.running_var + bn1.eps) * bn1.weight + bn1.bias
    h = h @ fc.weight.T + fc.bias  # dropout is the identity in eval mode
    ref = (h - bn2.running_mean) / torch.sqrt(bn2.running_var + bn2.eps) * 1.0 + bn2.bias
    torch.testing.assert_close(head(x), ref)
    assert not bn2.weight.requires_grad  # scale of the final BN fixed to 1 (insightface)


def test_head_rejects_bad_config():
    with pytest.raises(ValueError, match="model.head"):
        EmbeddingHead(8, 4, "mlp")
    with pytest.raises(ValueError, match="model.dropout"):
        EmbeddingHead(8, 4, "linear", dropout=1.0)


# ---- FaceNet ---------------------------------------------------------------------------------------------
def test_facenet_output_is_unit_norm_128d():
    m = facenet().eval()
    out = m(torch.rand(3, 3, 32, 32))
    assert set(out) == {"embedding"} and out["embedding"].shape == (3, 128)
    torch.testing.assert_close(out["embedding"].norm(dim=1), torch.ones(3))


def _brute_force_triplet_mean(emb, labels, margin, miner):
    """Loop reference: FaceNet hinge over every (a, p, n) the miner definition admits, averaged."""
    e = F.normalize(emb, dim=1)
    d = torch.cdist(e, e) ** 2
    losses = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(len(labels)):
                if labels[n] == labels[a]:
                    continue
                if miner == "semihard" and not (d[a, p] < d[a, n] < d[a, p] + margin):
                    continue
                losses.append(torch.relu(d[a, p] - d[a, n] + margin))
    return torch.stack(losses).mean(), len(losses)


@pytest.mark.parametrize("miner", ["batch_all", "semihard"])
def test_facenet_loss_is_mean_over_mined_triplets(miner):
    torch.manual_seed(1)
    m = facenet(miner=miner, margin=0.5)
    emb = torch.randn(9, 128)
    labels = torch.arange(3).repeat_interleave(3)
    loss, per_anchor, logs = m.compute_loss(emb, labels)
    ref, count = _brute_force_triplet_mean(emb, labels, 0.5, miner)
    assert logs["triplets"] == count > 0
    torch.testing.assert_close(loss, ref)
    assert per_anchor.shape == (9,)


def test_facenet_training_step_returns_loss_per_sample_and_index():
    m = facenet(miner="batch_all")
    batch = pk_batch()
    m.log = lambda *a, **k: None  # no trainer attached
    out = m.training_step(batch, 0)
    assert out["loss"].dim() == 0 and out["loss"].requires_grad
    assert out["per_sample_loss"].shape == (9,) and not out["per_sample_loss"].requires_grad
    assert torch.equal(out["index"], batch["index"])
    out["loss"].backward()
    assert m.embedder.backbone.stem[0][0].weight.grad is not None


def test_facenet_empty_batch_gives_connected_zero():
    m = facenet()
    loss, _, logs = m.compute_loss(torch.randn(4, 128, requires_grad=True), torch.arange(4))  # no positives
    assert logs["triplets"] == 0 and float(loss.detach()) == 0.0
    loss.backward()


# ---- ArcFace ---------------------------------------------------------------------------------------------
def test_arcface_loss_matches_formula():
    torch.manual_seed(2)
    m = arcface(loss_kwargs={"scale": 10.0, "margin": 0.3})
    emb = F.normalize(torch.randn(6, 16), dim=1)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    loss, per, logs = m.compute_loss(emb, labels)
    w = F.normalize(m.loss.weight.detach(), dim=1)
    ref = []
    for i in range(6):
        cos = w @ emb[i]
        logits = [10.0 * (math.cos(math.acos(float(cos[j])) + 0.3) if j == labels[i] else float(cos[j]))
                  for j in range(4)]
        ref.append(-logits[labels[i]] + math.log(sum(math.exp(v) for v in logits)))
    torch.testing.assert_close(per, torch.tensor(ref), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loss, torch.tensor(ref).mean(), rtol=1e-4, atol=1e-4)
    pred = (emb @ w.T).argmax(1)
    assert float(logs["acc"]) == pytest.approx(float((pred == labels).float().mean()))


def test_arcface_centres_are_optimised_with_their_own_lr():
    m = arcface(centre_lr=0.5, optimizer=lambda params: torch.optim.SGD(params, lr=0.01))
    opt = m.configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    assert opt.param_groups[1]["params"][0] is m.loss.weight
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in ids for p in m.parameters() if p.requires_grad)


def test_labels_beyond_classes_fail_in_loss():
    m = arcface()
    with pytest.raises(ValueError, match="num_classes=4"):
        m.compute_loss(torch.randn(2, 16), torch.tensor([0, 4]))


def test_more_identities_than_centres_names_both_numbers():
    m = arcface()
    m._trainer = SimpleNamespace(datamodule=SimpleNamespace(info=SimpleNamespace(num_identities=7)))
    with pytest.raises(ValueError, match=r"7 identities.*4 classes.*num_identities=7.*reinit_centres"):
        m.check_data()


def test_num_identities_required():
    with pytest.raises(ValueError, match="model.num_identities"):
        ArcFaceModel(**SMALL, num_identities=None)


# ---- initialisation from a checkpoint (priming) ---------------------------------------------------------------
def _save(model, path):
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def test_init_from_keeps_embedder_and_reinitialises_centres(tmp_path):
    torch.manual_seed(3)
    src = arcface(num_identities=4)
    ckpt = _save(src, tmp_path / "pre.ckpt")
    dst = arcface(num_identities=6, reinit_centres=True)
    centres_before = dst.loss.weight.detach().clone()
    info = dst.load_pretrained(ckpt)
    assert info["reinitialised"] == ["loss.weight"]
    for k, v in src.embedder.state_dict().items():
        torch.testing.assert_close(dst.embedder.state_dict()[k], v)
    assert dst.loss.weight.shape == (6, 16)
    torch.testing.assert_close(dst.loss.weight.detach(), centres_before)  # untouched fresh centres


def test_init_from_more_identities_without_reinit_fails(tmp_path):
    ckpt = _save(arcface(num_identities=4), tmp_path / "pre.ckpt")
    with pytest.raises(ValueError, match=r"\(4, 16\).*6 identities.*reinit_centres=true"):
        arcface(num_identities=6).load_pretrained(ckpt)


def test_init_from_same_identities_loads_centres(tmp_path):
    src = arcface(num_identities=4)
    ckpt = _save(src, tmp_path / "pre.ckpt")
    dst = arcface(num_identities=4)
    dst.load_pretrained(ckpt)
    torch.testing.assert_close(dst.loss.weight, src.loss.weight)


def test_init_from_other_architecture_fails(tmp_path):
    ckpt = _save(facenet(), tmp_path / "f.ckpt")
    with pytest.raises(ValueError, match="does not match this model's embedder"):
        arcface().load_pretrained(ckpt)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        arcface().load_pretrained(tmp_path / "missing.ckpt")


# ---- evaluation -------------------------------------------------------------------------------------------------
class _Recorder:
    def __init__(self):
        self.calls = []

    def update(self, emb, ids, index, embeddings_flipped=None):
        self.calls.append((emb, embeddings_flipped))


def test_flip_tta_feeds_mirrored_embeddings():
    m = facenet(flip_tta=True).eval()
    batch = pk_batch(2, 2)
    rec = _Recorder()
    with torch.no_grad():
        m._eval_update(rec, batch)
        (emb, flipped), = rec.calls
        torch.testing.assert_close(flipped, m.embedder(batch["image"].flip(3)))
        torch.testing.assert_close(emb, m.embedder(batch["image"]))
