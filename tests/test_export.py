"""Export of the recognition embedder: ONNX (onnxruntime) and TorchScript outputs equal PyTorch's within 1e-4."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.export import export_checkpoint, load_model
from zoo.models.recognition import ArcFaceModel, FaceNetTriplet


def _checkpoint(model, path):
    """What train.py writes (Lightning state_dict + hyper_parameters + RunRecord's zoo entry)."""
    cls = type(model)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "zoo": {"model_class": f"{cls.__module__}.{cls.__qualname__}", "config": {}}}, path)
    return path


def _trained_like(model):
    """Non-trivial BatchNorm statistics, as after training (eval mode must use them)."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model.embedder(torch.rand(6, model.channels, model.image_size, model.image_size) * 2 - 1)
    return model.eval()


MODELS = {
    "facenet_nn4small": lambda: FaceNetTriplet(backbone="nn4small", channels=3, image_size=64),
    "arcface_resnet10t": lambda: ArcFaceModel(backbone="resnet10t", channels=1, image_size=48, num_identities=5,
                                             embedding_dim=32),
}


@pytest.mark.parametrize("name,fmt", [
    ("facenet_nn4small", "onnx"), ("facenet_nn4small", "torchscript"), ("arcface_resnet10t", "torchscript"),
    pytest.param("arcface_resnet10t", "onnx", marks=pytest.mark.slow),  # ~10 s of torch.export tracing
])
def test_exported_embeddings_match_pytorch(tmp_path, name, fmt):
    torch.manual_seed(0)
    model = _trained_like(MODELS[name]())
    ckpt = _checkpoint(model, tmp_path / "m.ckpt")
    info = export_checkpoint(ckpt, fmt, tmp_path / f"m.{fmt}")
    x = torch.rand(7, model.channels, model.image_size, model.image_size) * 2 - 1  # another batch size
    with torch.no_grad():
        ref = model(x)["embedding"]
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(info["path"], providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
    else:
        with torch.no_grad():
            got = torch.jit.load(info["path"])(x)
    assert got.shape == ref.shape == (7, model.embedding_dim)
    assert float((got - ref).abs().max()) <= 1e-4
    np.testing.assert_allclose(got.norm(dim=1).numpy(), 1.0, atol=1e-5)


def test_load_model_restores_weights(tmp_path):
    torch.manual_seed(1)
    model = _trained_like(MODELS["facenet_nn4small"]())
    again = load_model(_checkpoint(model, tmp_path / "m.ckpt"))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x)["embedding"], model(x)["embedding"])


def test_bad_format_and_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export_checkpoint(tmp_path / "m.ckpt", "tflite")
    with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
        export_checkpoint(tmp_path / "nothing.ckpt", "onnx")
