"""LandmarkRegressor: shapes, per-sample losses against hand computations, validation-weight ramp,
anchor, coordinate spaces, loss stages, bad arguments."""
import pytest
import torch

from zoo.models.landmark import LandmarkRegressor

L_, S = 68, 64


def make(**kw):
    torch.manual_seed(0)
    args = dict(num_landmarks=L_, image_size=S, channels=1, scheme="ibug68", head_hidden=32)
    args.update(kw)
    return LandmarkRegressor(**args)


def batch(b=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    vis = torch.rand(b, L_, generator=g) > 0.2
    lm = torch.rand(b, L_, 2, generator=g) * (S - 1)
    lm[~vis] = float("nan")  # hidden points may be NaN
    return {"image": torch.rand(b, 1, S, S, generator=g), "landmarks": lm, "visible": vis,
            "norm": torch.full((b,), 20.0), "index": torch.arange(b) + 10}


@pytest.mark.parametrize("validation_head", [True, False])
def test_forward_shapes_and_start_on_anchor(validation_head):
    m = make(validation_head=validation_head, anchor="centre").eval()
    out = m(torch.rand(2, 1, S, S))
    assert out["landmarks"].shape == (2, L_, 2)
    assert (out["validation"] is None) == (not validation_head)
    if validation_head:
        assert out["validation"].shape == (2, L_)
    # near-zero last layer: predictions start on the crop centre (S - 1) / 2
    assert torch.allclose(out["landmarks"], torch.full_like(out["landmarks"], (S - 1) / 2), atol=1.5)
    assert m.head.fc2.out_features == (3 if validation_head else 2) * L_


def test_timm_backbone_model():
    m = make(backbone="resnet18").eval()
    assert m(torch.rand(2, 1, S, S))["landmarks"].shape == (2, L_, 2)


def test_per_sample_l2_loss_matches_hand_computation():
    m = make(validation_head=False, loss_schedule=[{"epoch": 0, "loss": "l2"}])
    b = batch()
    out = m.training_step(b, 0)
    with torch.no_grad():
        pred = m(b["image"])["landmarks"]
    expected = []
    for i in range(3):
        terms = [0.5 * ((pred[i, j] - b["landmarks"][i, j]) ** 2).sum() for j in range(L_) if b["visible"][i, j]]
        expected.append(sum(terms) / len(terms))
    assert torch.allclose(out["per_sample_loss"], torch.stack(expected), rtol=1e-4)
    assert out["loss"].item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-4)
    assert torch.equal(out["index"], b["index"])
    assert not out["per_sample_loss"].requires_grad and out["loss"].requires_grad


def test_validation_loss_term_and_ramp():
    m = make(validation_weight=0.1, validation_warmup_steps=300, loss_schedule=[{"epoch": 0, "loss": "l1"}])
    assert m.current_validation_weight(0) == pytest.approx(0.1 / 300)
    assert m.current_validation_weight(149) == pytest.approx(0.05)
    assert m.current_validation_weight(299) == pytest.approx(0.1)
    assert m.current_validation_weight(5000) == pytest.approx(0.1)
    b = batch()
    out = m.training_step(b, 0)  # global_step 0 outside a trainer
    with torch.no_grad():
        o = m(b["image"])
    w = 0.1 / 300
    expected = []
    for i in range(3):
        coord, val, n = 0.0, 0.0, 0
        for j in range(L_):
            if not b["visible"][i, j]:
                continue
            e = (o["landmarks"][i, j] - b["landmarks"][i, j]).abs()
            coord += e.sum()  # L1: |ex| + |ey|
            d = e.sum()  # Manhattan distance, the validation label (paper Eq. 3)
            val += 0.5 * (d - o["validation"][i, j]) ** 2
            n += 1
        expected.append(coord / n + w * val / n)
    assert torch.allclose(out["per_sample_loss"], torch.stack(expected), rtol=1e-4)


def test_zero_warmup_means_full_weight():
    assert make(validation_weight=0.3, validation_warmup_steps=0).current_validation_weight(0) == 0.3


def test_anchor_is_mean_visible_shape_of_first_batch():
    m = make()
    b = batch()
    m.training_step(b, 0)
    vis = b["visible"]
    for j in (0, 17, 67):
        pts = [b["landmarks"][i, j] for i in range(3) if vis[i, j]]
        ref = torch.stack(pts).mean(0) if pts else torch.full((2,), (S - 1) / 2)
        assert torch.allclose(m.anchor[j], ref, atol=1e-5)
    assert bool(m.anchor_ready)
    before = m.anchor.clone()
    m.training_step(batch(seed=2), 1)  # only the first batch sets it
    assert torch.equal(before, m.anchor)


def test_normalized_coordinates_scale_the_loss():
    b = batch()
    px = make(validation_head=False, loss_schedule=[{"epoch": 0, "loss": "l2"}], anchor="centre")
    nz = make(validation_head=False, loss_schedule=[{"epoch": 0, "loss": "l2"}], anchor="centre",
              coord_space="normalized")
    lp, ln = px.training_step(b, 0)["per_sample_loss"], nz.training_step(b, 0)["per_sample_loss"]
    assert torch.allclose(ln, lp / S**2, rtol=1e-4)  # L2 in units of the crop size


def test_set_loss_stage_switches_coordinate_loss():
    from zoo.losses import L1Loss, L2Loss, WingLoss

    m = make(loss_schedule=[{"epoch": 0, "loss": "l2"}, {"epoch": 2, "loss": "l1"},
                            {"epoch": 4, "loss": "wing", "omega": 10.0, "epsilon": 2.0}])
    assert isinstance(m.criterion.coord_loss, L2Loss)
    assert m.set_loss_stage(1) and isinstance(m.criterion.coord_loss, L1Loss)
    assert m.set_loss_stage(2) and isinstance(m.criterion.coord_loss, WingLoss)
    assert m.criterion.coord_loss.omega == 10.0
    assert not m.set_loss_stage(2)
    m2 = make(validation_head=False, loss_schedule=[{"epoch": 0, "loss": "l2"}, {"epoch": 1, "loss": "l1"}])
    m2.set_loss_stage(1)
    assert isinstance(m2.criterion, L1Loss)


def test_per_sample_loss_keeps_mode_and_no_grad():
    m = make().train()
    b = batch()
    m.training_step(b, 0)
    losses, idx = m.per_sample_loss(b)
    assert losses.shape == (3,) and not losses.requires_grad and torch.equal(idx, b["index"])
    assert m.training


@pytest.mark.parametrize("kw,match", [
    ({"num_landmarks": None}, "model.num_landmarks"),
    ({"image_size": 0}, "model.image_size"),
    ({"coord_space": "metres"}, "model.coord_space"),
    ({"anchor": "nose"}, "model.anchor"),
    ({"validation_weight": -1.0}, "model.validation_weight"),
    ({"loss_schedule": [{"epoch": 0, "loss": "nope"}]}, "unknown loss 'nope'"),
    ({"backbone": "not_a_net"}, "unknown backbone 'not_a_net'"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        make(**kw)


def test_test_time_flip_averages_the_mirrored_prediction_by_hand():
    from zoo.schemes import get_scheme

    perm = list(get_scheme("ibug68").flip_permutation)
    m = make(test_time_flip=True, flip_permutation=perm).eval()
    x = torch.rand(2, 1, S, S)
    with torch.no_grad():
        a, b = m(x), m(torch.flip(x, dims=[3]))
        got = m.predict(x)
    want_lm = torch.empty(2, L_, 2)
    want_v = torch.empty(2, L_)
    for n in range(2):
        for j in range(L_):  # point j of the image is point perm[j] of the mirror image, x -> S - 1 - x
            k = perm[j]
            want_lm[n, j, 0] = 0.5 * (a["landmarks"][n, j, 0] + (S - 1 - b["landmarks"][n, k, 0]))
            want_lm[n, j, 1] = 0.5 * (a["landmarks"][n, j, 1] + b["landmarks"][n, k, 1])
            want_v[n, j] = 0.5 * (a["validation"][n, j] + b["validation"][n, k])
    torch.testing.assert_close(got["landmarks"], want_lm)
    torch.testing.assert_close(got["validation"], want_v)
    plain = make(flip_permutation=perm).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain.predict(x)["landmarks"], plain(x)["landmarks"])  # off: forward


def test_test_time_flip_needs_the_permutation():
    with pytest.raises(ValueError, match="model.test_time_flip"):
        make(test_time_flip=True)


def test_init_from_missing_file_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="model.init_from"):
        make(init_from=str(tmp_path / "nope.ckpt"))
