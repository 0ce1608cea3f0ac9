"""FaceEmbedder (zoo.models.inference): face crops -> unit-norm embeddings with the training preprocessing inside."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from _tiny_runs import tiny_facenet, tiny_landmark
from zoo.models.inference import FaceEmbedder, data_normalisation


@pytest.fixture(scope="module")
def facenet_ckpt(tmp_path_factory):
    return tiny_facenet(tmp_path_factory.mktemp("facenet"))


def independent_input(img: np.ndarray, size: int, mean: float, std: float) -> torch.Tensor:
    """The training preprocessing of a square RGB uint8 crop written out by hand: INTER_AREA resize to ``size``,
    x / 255, (x - mean) / std, [C, S, S]."""
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - mean) / std


def test_embed_equals_the_models_forward_and_is_unit_norm(facenet_ckpt):
    from zoo.models.recognition import FaceNetTriplet

    emb = FaceEmbedder.from_checkpoint(facenet_ckpt)
    # the checkpoint's model loaded on its own (Lightning), and the synthetic data's normalisation (mean 0, std 1)
    model = FaceNetTriplet.load_from_checkpoint(facenet_ckpt, map_location="cpu", weights_only=False).eval()
    assert (emb.image_size, emb.channels) == (32, 3) and float(emb.mean.flatten()[0]) == 0.0
    rng = np.random.default_rng(0)
    same_size = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    larger = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    e = emb.embed(same_size + larger)
    assert e.shape == (5, 16) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(5), atol=1e-5)
    with torch.no_grad():
        ref = model(torch.stack([independent_input(i, 32, 0.0, 1.0) for i in same_size + larger]))["embedding"]
    assert torch.allclose(e[:3], ref[:3], atol=1e-5)  # no resampling: the same input exactly
    # 64 -> 32: the area-filtered crop equals cv2's INTER_AREA resize up to rounding of uint8 pixels
    assert torch.allclose(e[3:], ref[3:], atol=2e-3)
    # a stacked [N, H, W, 3] array and a gray crop (replicated to RGB, as training reads gray files) work too
    assert torch.allclose(emb.embed(np.stack(same_size)), e[:3], atol=1e-6)
    gray = same_size[0][..., 0]
    with torch.no_grad():
        ref_gray = model(independent_input(np.repeat(gray[..., None], 3, axis=2), 32, 0.0, 1.0)[None])["embedding"]
    assert torch.allclose(emb.embed([gray]), ref_gray, atol=1e-5)


def test_flip_tta_fuses_the_mirror(facenet_ckpt):
    emb = FaceEmbedder.from_checkpoint(facenet_ckpt, flip_tta=True)
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    plain = FaceEmbedder.from_checkpoint(facenet_ckpt).embed([img, img[:, ::-1].copy()])
    want = torch.nn.functional.normalize(plain[0] + plain[1], dim=0)
    assert torch.allclose(emb.embed([img])[0], want, atol=1e-5)


def test_landmark_checkpoint_is_refused_naming_both_classes(tmp_path):
    ckpt = tiny_landmark(tmp_path)
    with pytest.raises(ValueError, match=r"LandmarkRegressor.*EmbeddingModel"):
        FaceEmbedder.from_checkpoint(ckpt)


def test_data_normalisation_defaults_of_the_datamodule_class():
    assert data_normalisation({"_target_": "zoo.datamodules.identity.IdentityDataModule"}) == \
        {"mean": 0.5, "std": 0.5}
    assert data_normalisation({"_target_": "zoo.datamodules.synthetic.Synthetic3DMMDataModule", "std": 2.0}) == \
        {"mean": 0.0, "std": 2.0}
    assert data_normalisation(None) == {}


def test_landmarks_align_the_face_as_in_training(facenet_ckpt):
    """A smooth 32-px crop pasted into a larger image by a known rotation + shift, with its five alignment points
    carried along: the aligned embedding equals the model's embedding of the original crop."""
    from zoo.datamodules.crop import ARCFACE_TEMPLATE_112
    from zoo.models.recognition import FaceNetTriplet

    rng = np.random.default_rng(2)
    crop = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (0, 0), 3)
    crop = cv2.normalize(crop, None, 0, 255, cv2.NORM_MINMAX)
    tpl = (ARCFACE_TEMPLATE_112 + 0.5) * 32 / 112 - 0.5  # where training puts the five points in a 32-px crop
    a = 0.35
    place = np.array([[np.cos(a), -np.sin(a), 40.0], [np.sin(a), np.cos(a), 20.0]])  # crop -> image
    image = cv2.warpAffine(crop, place, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    points = tpl @ place[:, :2].T + place[:, 2]
    aligned = FaceEmbedder.from_checkpoint(facenet_ckpt, crop="aligned")
    model = FaceNetTriplet.load_from_checkpoint(facenet_ckpt, map_location="cpu", weights_only=False).eval()
    with torch.no_grad():
        ref = model(independent_input(crop, 32, 0.0, 1.0)[None])["embedding"][0]
    e = aligned.embed([image], landmarks=[points])[0]
    assert float(e @ ref) > 0.995, float(e @ ref)
    assert float(aligned.embed([image])[0] @ ref) < float(e @ ref)  # without landmarks: the whole image, not the face
    with pytest.raises(ValueError, match=r"one \[68, 2\] or \[5, 2\] array per image"):
        aligned.embed([image, image], landmarks=[points])
    with pytest.raises(ValueError, match="crop must be full, keypoints, box or aligned"):
        FaceEmbedder.from_checkpoint(facenet_ckpt, crop="tight")
