"""Export a trained recognition embedder (backbone + head + L2 normalisation, eval mode) to ONNX or TorchScript.

The exported network maps ``image [N, C, H, W]`` (float32, normalised like the training data, e.g. [-1, 1])
to ``embedding [N, D]`` with unit L2 norm; the batch dimension is dynamic. Compare two faces by the dot
product of their embeddings (cosine similarity).

    python export.py ckpt_path=runs/.../last.ckpt format=onnx out=embedder.onnx

:func:`export_checkpoint` rebuilds the model from the checkpoint alone: the class recorded by train.py
(``checkpoint["zoo"]["model_class"]``) and the model's saved hyper-parameters. After writing, :func:`verify_export`
runs the exported file (onnxruntime / torch.jit) on a random batch of a different batch size and checks that the
embeddings match PyTorch's within ``atol``.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def load_model(ckpt_path: str | Path) -> nn.Module:
    """The LightningModule stored in a checkpoint written by train.py, on CPU, in eval mode.

    The class comes from ``checkpoint["zoo"]["model_class"]`` (:func:`zoo.checkpoint.load_run_checkpoint`), the
    constructor arguments from the saved hyper-parameters. Loads with ``weights_only=False`` (checkpoints hold
    sampler/callback state): only load checkpoints you trust.
    """
    from zoo.checkpoint import load_run_checkpoint

    cls, _, ckpt = load_run_checkpoint(ckpt_path)
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(f"ckpt_path: {ckpt_path} has no state_dict/hyper_parameters (not a Lightning checkpoint)")
    model = cls(**dict(ckpt["hyper_parameters"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def embedder_of(model: nn.Module) -> nn.Module:
    emb = getattr(model, "embedder", None)
    if not isinstance(emb, nn.Module):
        raise ValueError(f"{type(model).__name__} has no 'embedder' module: only recognition models can be exported")
    return emb.eval()


def example_input(model: nn.Module, batch_size: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, model.channels, model.image_size, model.image_size, generator=g) * 2 - 1


def export_embedder(embedder: nn.Module, example: torch.Tensor, fmt: str, out: str | Path, opset: int = 18) -> Path:
    """Write ``embedder`` (eval mode) as ``fmt`` to ``out``; returns the path."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    embedder = embedder.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit.* is deprecated upstream (FutureWarning) but TorchScript is still what C++/mobile users load
        warnings.simplefilter("ignore", FutureWarning)
        if fmt == "onnx":
            for name in ("onnxscript", "onnx_ir"):  # their INFO chatter shows up under Hydra's logging config
                logging.getLogger(name).setLevel(logging.WARNING)
            batch = torch.export.Dim("batch", min=1, max=4096)
            prog = torch.onnx.export(embedder, (example,), dynamo=True, input_names=["image"],
                                     output_names=["embedding"], dynamic_shapes={"image": {0: batch}},
                                     opset_version=opset, verbose=False)
            prog.save(str(out))
        else:
            traced = torch.jit.trace(embedder, example, check_trace=False)
            torch.jit.save(traced, str(out))
    return out


def run_exported(path: str | Path, image: torch.Tensor) -> torch.Tensor:
    """Embeddings of ``image`` computed by an exported file (ONNX through onnxruntime, TorchScript by torch.jit)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = sess.run(["embedding"], {"image": image.detach().cpu().numpy()})
        return torch.from_numpy(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        mod = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return mod(image)


def verify_export(embedder: nn.Module, path: str | Path, example: torch.Tensor, atol: float = 1e-4) -> float:
    """Max |exported - PyTorch| embedding difference on ``example``; ValueError when above ``atol``."""
    with torch.no_grad():
        ref = embedder.eval()(example)
    got = run_exported(path, example)
    if got.shape != ref.shape:
        raise ValueError(f"{path}: exported model returned shape {tuple(got.shape)}, PyTorch {tuple(ref.shape)}")
    err = float((got - ref).abs().max())
    if not err <= atol:
        raise ValueError(f"{path}: exported embeddings differ from PyTorch's by {err:.3g} > atol={atol}")
    return err


def check_output_path(out: Path, key: str = "out") -> None:
    """ValueError naming ``key`` when ``out`` cannot be written: a folder, or a parent that is a file."""
    if out.is_dir():
        raise ValueError(f"{key}={out}: is a folder; expected a file path (e.g. {out / 'embedder.onnx'})")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{key}={out}: {parent} is a file, not a folder; expected a path whose parent "
                                 f"folders are folders (or do not exist yet)")
            break


def export_checkpoint(ckpt_path: str | Path, fmt: str = "onnx", out: str | Path | None = None, opset: int = 18,
                      verify: bool = True, atol: float = 1e-4) -> dict[str, Any]:
    """Load ``ckpt_path``, export its embedder, and (``verify``) check it on a batch of another size."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    out = Path(out) if out else Path(ckpt_path).with_suffix(FORMATS[fmt])
    check_output_path(out)
    model = load_model(ckpt_path)
    emb = embedder_of(model)
    path = export_embedder(emb, example_input(model, 2), fmt, out, opset=opset)
    info: dict[str, Any] = {"path": str(path), "format": fmt, "input": [None, model.channels, model.image_size,
                                                                        model.image_size],
                            "embedding_dim": model.embedding_dim}
    if verify:
        info["max_abs_diff"] = verify_export(emb, path, example_input(model, 5, seed=1), atol)
    return info
