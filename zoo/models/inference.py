"""Landmark inference without Hydra: checkpoint in, landmarks + validation signal out.

    from zoo.models.inference import LandmarkPredictor
    pred = LandmarkPredictor.from_checkpoint("outputs/.../checkpoints/last.ckpt")
    out = pred.predict(images, boxes=None)       # list of HxW / HxWx3 uint8 arrays, or a tensor
    out.landmarks    # [N, L, 2] float32, pixels of the original images (0-based, pixel centres)
    out.validation   # [N, L] float32 or None: the predicted error of each landmark (seed 002), in
                     # original-image pixels (Manhattan |dx| + |dy| by default); higher = less reliable

Crops are made with the training geometry (:mod:`zoo.datamodules.crop`): with ``boxes`` [N, 4]
(x0, y0, x1, y1), the square of side ``crop_scale · max(w, h)`` around the box centre (the datamodule's
``crop_scale``, read from the checkpoint's saved config; the box should frame the face the way the
training box did — the landmark bounding box for 300-W folders); without boxes each image is taken to be a
face crop already (the square of side max(H, W) around its centre). Area interpolation is used when
shrinking, as in training. Pixel values are scaled as in training: ``(x / 255 - mean) / std``.

Whole photos: ``pred.predict_image("photo.jpg")`` finds the faces with a detector and maps its boxes to the
training crop by a map learnt on the training data (:mod:`zoo.models.photos`, :mod:`zoo.detection`).

``backend``: ``"torch"`` (eager PyTorch, default), ``"onnxruntime"`` (the network exported to ONNX in memory and
run by onnxruntime, checked against PyTorch on a random batch at construction: ~2-3x lower latency at batch 1 on
CPU) or ``"auto"`` (onnxruntime when installed, else torch).
"""
from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from zoo.checks import check_choice
from zoo.datamodules.crop import CROPS, align_matrix, crop_matrix, face_square, matrix_scale, warp_crop

log = logging.getLogger(__name__)
BACKENDS = ("torch", "onnxruntime", "auto")


@dataclass
class LandmarkPrediction:
    landmarks: np.ndarray  # [N, L, 2] original-image pixels
    validation: np.ndarray | None  # [N, L] original-image pixels, None without the validation head
    crop_landmarks: np.ndarray  # [N, L, 2] crop pixels
    matrices: np.ndarray  # [N, 2, 3] source -> crop affine matrices


class LandmarkPredictor:
    """Wraps a trained landmark model with the crop geometry and pixel scaling it was trained with."""

    def __init__(self, model: torch.nn.Module, image_size: int, channels: int, crop_scale: float = 1.25,
                 mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0,
                 interpolation: str = "area", device: str | torch.device = "cpu", batch_size: int = 64,
                 backend: str = "torch") -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.image_size, self.channels = int(image_size), int(channels)
        self.crop_scale, self.interpolation, self.batch_size = float(crop_scale), interpolation, int(batch_size)
        self.align = False  # landmark crops are landmark-box squares (FaceEmbedder: the training data's data.crop)
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        self.ckpt_path: str | None = None  # set by from_checkpoint (where predict_image keeps its box-to-crop map)
        self.run_config: dict[str, Any] = {}
        self._photo: Any = None
        self._session: Any = None
        self.backend = self._start_backend(check_choice("backend", backend, BACKENDS))

    # ---- backends ---------------------------------------------------------------------------------------
    def _start_backend(self, backend: str) -> str:
        if backend == "torch":
            return backend
        if self.device.type != "cpu":
            if backend == "onnxruntime":
                raise ValueError(f"backend='onnxruntime' runs on CPU only; got device={str(self.device)!r}")
            return "torch"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if backend == "onnxruntime":
                raise ValueError("backend='onnxruntime': onnxruntime is not installed (`pip install onnxruntime`, in "
                                 "zoo's dev extra); or use backend='torch'") from None
            return "torch"
        try:
            self._session = self._onnx_session(slow_export=backend == "onnxruntime")
        except Exception as e:  # noqa: BLE001 - any export/runtime failure: eager PyTorch still works
            if backend == "onnxruntime":
                raise
            msg = str(e).splitlines()[0][:200] if str(e) else ""
            log.warning("backend='auto': ONNX export failed (%s: %s); using PyTorch", type(e).__name__, msg)
            return "torch"
        return "onnxruntime"

    def _onnx_session(self, atol: float = 1e-3, slow_export: bool = True) -> Any:
        """The network (eval mode) exported to ONNX in memory and loaded in onnxruntime with torch's thread count;
        ValueError when its outputs differ from PyTorch's by more than ``atol`` pixels on a random batch.

        Exported by the TorchScript-based exporter (about a second); when that fails (e.g. the seed-002 net's 3x3
        adaptive pooling on a feature map whose side 3 does not divide, as at 64 px input) by the torch.export-based
        one when ``slow_export`` (tens of seconds), else the error propagates."""
        import onnxruntime as ort

        model = self.model

        class Outputs(torch.nn.Module):  # dict -> tuple (ONNX graphs return tuples)
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
                out = self.model(x)
                return (out["landmarks"],) if out.get("validation") is None else (out["landmarks"], out["validation"])

        example = torch.rand(3, self.channels, self.image_size, self.image_size, generator=torch.Generator().manual_seed(0))
        example = (example - self.mean) / self.std
        with torch.no_grad():
            ref = Outputs()(example)
        names = ["landmarks", "validation"][:len(ref)]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated upstream; it exports in ~1 s
            try:
                buf = io.BytesIO()
                torch.onnx.export(Outputs().eval(), (example,), buf, dynamo=False, input_names=["image"],
                                  output_names=names, dynamic_axes={"image": {0: "batch"}}, opset_version=17)
                graph = buf.getvalue()
            except Exception:  # noqa: BLE001 - e.g. adaptive pooling to a size that does not divide the input
                if not slow_export:
                    raise
                for name in ("onnxscript", "onnx_ir"):
                    logging.getLogger(name).setLevel(logging.WARNING)
                prog = torch.onnx.export(Outputs().eval(), (example,), dynamo=True, input_names=["image"],
                                         output_names=names, verbose=False,
                                         dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}})
                graph = prog.model_proto.SerializeToString()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": example.numpy()})
        err = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
        if not err <= atol:
            raise ValueError(f"backend='onnxruntime': the exported network differs from PyTorch by {err:.3g} px "
                             f"> {atol}; use backend='torch'")
        return sess

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                        **overrides: Any) -> "LandmarkPredictor":
        """Load a checkpoint written by train.py (a full pickle: load only checkpoints you trust); crop settings come from its saved data config (keys
        ``crop_scale`` (or the synthetic data's ``face_scale`` = 1 / crop_scale), ``mean``, ``std``,
        ``interpolation``; defaults 1.25, 0, 1, area) unless overridden."""
        from zoo.checkpoint import class_path, load_run_checkpoint
        from zoo.models.landmark import LandmarkRegressor

        model_cls, config, _ = load_run_checkpoint(path)
        if getattr(model_cls, "task", None) != "landmarks":
            raise ValueError(f"ckpt_path: {path} holds a {class_path(model_cls)} checkpoint, which is not a landmark "
                             f"model (task {getattr(model_cls, 'task', None)!r}); LandmarkPredictor needs a landmark "
                             f"model such as {class_path(LandmarkRegressor)}")
        model = model_cls.load_from_checkpoint(path, map_location=device, weights_only=False)
        hp = model.hparams
        data = dict(config.get("data") or {})
        crop_scale = data.get("crop_scale") or (1.0 / data["face_scale"] if data.get("face_scale") else 1.25)
        kw = dict(image_size=hp.image_size, channels=hp.channels, crop_scale=crop_scale,
                  mean=data.get("mean", 0.0), std=data.get("std", 1.0),
                  interpolation=data.get("interpolation", "area"))
        kw.update(overrides)
        pred = cls(model, device=device, **kw)
        pred.ckpt_path, pred.run_config = str(path), dict(config)
        return pred

    # ---- preprocessing ---------------------------------------------------------------------------------
    def _as_arrays(self, images: Any) -> list[np.ndarray]:
        if torch.is_tensor(images):
            t = images.detach().cpu()
            if t.dim() == 2 or (t.dim() == 3 and t.shape[-1] in (1, 3) and t.shape[0] not in (1, 3)):
                t = t[None]
            if t.dim() == 3:  # [N, H, W]
                arr = [x.numpy() for x in t]
            elif t.dim() == 4 and t.shape[1] in (1, 3):  # [N, C, H, W]
                arr = [x.permute(1, 2, 0).numpy() for x in t]
            elif t.dim() == 4:  # [N, H, W, C]
                arr = [x.numpy() for x in t]
            else:
                raise ValueError(f"images tensor must be [N,H,W], [N,C,H,W] or [N,H,W,C], got {tuple(t.shape)}")
        elif isinstance(images, np.ndarray):
            # HxW or HxWx3: one image; NxHxW or NxHxWxC: a stack
            single = images.ndim == 2 or (images.ndim == 3 and images.shape[-1] == 3)
            arr = [images] if single else list(images)
        else:
            arr = list(images)
        out = []
        for i, a in enumerate(arr):
            a = np.asarray(a)
            if a.dtype != np.uint8:
                if a.size and np.nanmax(a) <= 1.0:
                    a = a * 255.0
                a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
            if a.ndim == 3 and a.shape[-1] == 1:
                a = a[..., 0]
            if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
                raise ValueError(f"images[{i}] must be HxW (gray) or HxWx3 (RGB), got shape {a.shape}")
            if self.channels == 1 and a.ndim == 3:
                a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
            elif self.channels == 3 and a.ndim == 2:
                a = cv2.cvtColor(a, cv2.COLOR_GRAY2RGB)
            out.append(np.ascontiguousarray(a))
        return out

    def crops(self, images: Any, boxes: Any = None, landmarks: Any = None) -> tuple[torch.Tensor, np.ndarray]:
        """(model input [N, C, S, S], source->crop matrices [N, 2, 3]) for ``images`` and optional ``boxes`` or
        ``landmarks`` ([N, 68, 2] / [N, 5, 2] source pixels: the 5-point alignment of
        :func:`zoo.datamodules.crop.align_matrix` when the model was trained on aligned crops, else the square
        around the landmarks' box)."""
        arrays = self._as_arrays(images)
        if landmarks is not None:
            if boxes is not None:
                raise ValueError("give boxes or landmarks, not both")
            pts = [np.asarray(p, dtype=np.float64) for p in landmarks]
            if len(pts) != len(arrays) or any(p.ndim != 2 or p.shape[1] != 2 for p in pts):
                raise ValueError(f"landmarks: expected one [68, 2] or [5, 2] array per image ({len(arrays)} images), "
                                 f"got {len(pts)} of shapes {sorted({p.shape for p in pts})}")
            if self.align:
                mats = [align_matrix(p, self.image_size) for p in pts]
                return self._from_matrices(arrays, mats), np.stack(mats)
            boxes = np.stack([np.r_[p.min(0), p.max(0)] for p in pts])
        if boxes is not None:
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            if len(boxes) != len(arrays):
                raise ValueError(f"boxes: got {len(boxes)} boxes for {len(arrays)} images; expected one "
                                 f"(x0, y0, x1, y1) per image")
        mats = []
        for i, img in enumerate(arrays):
            if boxes is None:
                h, w = img.shape[:2]
                cx, cy, side = (w - 1) / 2.0, (h - 1) / 2.0, float(max(h, w))
            else:
                cx, cy, side = face_square(None, boxes[i], self.crop_scale)
            mats.append(crop_matrix((cx, cy), side, self.image_size))
        return self._from_matrices(arrays, mats), np.stack(mats)

    def _from_matrices(self, arrays: list[np.ndarray], mats: list[np.ndarray]) -> torch.Tensor:
        tensors = []
        for img, m in zip(arrays, mats):
            crop = warp_crop(img, m, self.image_size, self.interpolation)
            t = torch.from_numpy(crop).float().div_(255.0)
            t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
            tensors.append((t - self.mean) / self.std)
        return torch.stack(tensors)

    # ---- prediction ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_crops(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model output on prepared crops [N, C, S, S]: (landmarks [N, L, 2], validation [N, L] or None)."""
        lms, vals = [], []
        for s in range(0, len(x), self.batch_size):
            if self._session is not None:
                got = self._session.run(None, {"image": x[s:s + self.batch_size].float().contiguous().numpy()})
                lms.append(torch.from_numpy(got[0]))
                if len(got) > 1:
                    vals.append(torch.from_numpy(got[1]))
                continue
            out = self.model(x[s:s + self.batch_size].to(self.device))
            lms.append(out["landmarks"].float().cpu())
            if out.get("validation") is not None:
                vals.append(out["validation"].float().cpu())
        return torch.cat(lms), (torch.cat(vals) if vals else None)

    def predict(self, images: Any, boxes: Any = None) -> LandmarkPrediction:
        """Landmarks and validation signal in original-image pixels for each image (see module doc)."""
        x, mats = self.crops(images, boxes)
        lm, val = self.predict_crops(x)
        lm_np = lm.numpy()
        out = np.empty_like(lm_np)
        scales = np.empty(len(mats))
        for i, m in enumerate(mats):
            inv = cv2.invertAffineTransform(m)
            out[i] = lm_np[i] @ inv[:, :2].T + inv[:, 2]
            scales[i] = matrix_scale(m)
        v = None if val is None else (val.numpy() / scales[:, None]).astype(np.float32)
        return LandmarkPrediction(out.astype(np.float32), v, lm_np, mats)

    def predict_image(self, image: Any, detector: Any = "dlib", box_mapping: Any = None, refine: int = 1,
                      **detector_kwargs: Any) -> Any:
        """Faces found on a whole photo (path or uint8 array) with their landmarks and validation signal, in the
        photo's pixels: a :class:`zoo.models.photos.PhotoFaces` (``faces == []`` plus a warning when the detector
        finds none). The detector's boxes go to the training crop through the box-to-crop map learnt on the training
        data (``box_mapping``: a :class:`zoo.detection.BoxToCrop`, a JSON path, or None: the JSON next to the
        checkpoint, fitted on the run's training split the first time); ``refine`` re-crops from the predicted
        landmarks that many times. See :mod:`zoo.models.photos`."""
        from zoo.models.photos import PhotoLandmarker

        key = (detector if isinstance(detector, str) else id(detector), str(box_mapping), refine,
               tuple(sorted(detector_kwargs.items())))
        if self._photo is None or self._photo[0] != key:
            self._photo = (key, PhotoLandmarker(self, detector=detector, box_mapping=box_mapping, refine=refine,
                                                **detector_kwargs))
        return self._photo[1](image)

def data_normalisation(data_cfg: Any) -> dict[str, Any]:
    """{"mean", "std"} a data config normalises images with, ``(x - mean) / std`` for x in [0, 1]: its own keys, else
    its datamodule class's defaults (the identity folders: 0.5, 0.5; the synthetic faces: 0, 1); {} when unknown."""
    import inspect

    from hydra.utils import get_class

    data = dict(data_cfg or {})
    out: dict[str, Any] = {}
    for key in ("mean", "std"):
        if key in data:
            out[key] = data[key]
        elif data.get("_target_"):
            param = inspect.signature(get_class(data["_target_"])).parameters.get(key)
            if param is not None and param.default is not inspect.Parameter.empty:
                out[key] = param.default
    return out


class FaceEmbedder:
    """Face crops in, unit-norm identity embeddings out: a trained recognition model (FaceNetTriplet,
    ArcFaceModel / CosFace) with the preprocessing it was trained with, without Hydra.

        from zoo.models.inference import FaceEmbedder
        emb = FaceEmbedder.from_checkpoint("outputs/.../checkpoints/best-epoch005.ckpt")
        e = emb.embed(images)      # list of uint8 HxWx3 RGB (or HxW gray) face crops -> float32 [N, D], ||e_i|| = 1
        score = e[0] @ e[1]        # cosine similarity s(a, b) = a·b (seed 000, Eq. 1); same person when high

    Each image is taken to be a face crop framed like the training crops (``crop: full`` identity folders: the
    whole image; ``data=ytf_identities``: the square 1.25× the landmark box; the synthetic identities:
    ``face_scale`` of the frame): the square of side max(H, W) around its centre is resized to the model's
    ``image_size`` with area interpolation when shrinking (:mod:`zoo.datamodules.crop`, as in training), converted
    to the model's channels (RGB or gray), scaled ``(x / 255 - mean) / std`` with the training data's mean/std,
    embedded by the network in eval mode; with the model's ``flip_tta`` the embedding is
    ``normalise(e(x) + e(mirror x))``, as in its evaluation. Float images in [0, 1] are accepted too.

    With ``landmarks`` ([N, 68, 2] iBUG or [N, 5, 2] points in the images' pixels) the crop is made from them as in
    training: the ArcFace 5-point similarity alignment for a model trained with ``data.crop=aligned``, else the
    square ``crop_scale`` × the landmarks' box. A model trained on aligned crops given no landmarks takes each
    image to be an aligned crop already.
    """

    # the crop/resize/channel/normalisation code path of LandmarkPredictor (boxes=None: each image is the crop)
    _as_arrays = LandmarkPredictor._as_arrays
    crops = LandmarkPredictor.crops
    _from_matrices = LandmarkPredictor._from_matrices

    def __init__(self, model: torch.nn.Module, image_size: int, channels: int,
                 mean: float | Sequence[float] = 0.5, std: float | Sequence[float] = 0.5,
                 flip_tta: bool = False, device: str | torch.device = "cpu", batch_size: int = 64,
                 crop: str = "full", crop_scale: float = 1.25) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        if crop not in CROPS:
            raise ValueError(f"crop must be {', '.join(CROPS[:-1])} or {CROPS[-1]} (the training data's data.crop), "
                             f"got {crop!r}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.image_size, self.channels, self.batch_size = int(image_size), int(channels), int(batch_size)
        self.crop_scale, self.interpolation, self.flip_tta = float(crop_scale), "area", bool(flip_tta)
        self.align = crop == "aligned"
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                        **overrides: Any) -> "FaceEmbedder":
        """Load a recognition checkpoint written by train.py (a full pickle: load only checkpoints you trust).
        image_size / channels / flip_tta come from the model, mean / std from the saved data config (or that
        datamodule's defaults when the config does not list them); ``overrides`` replace any of them.
        A checkpoint of another task is a ValueError naming its class and the expected one."""
        from zoo.checkpoint import load_run_checkpoint
        from zoo.models.recognition import EmbeddingModel

        model_cls, config, _ = load_run_checkpoint(path)
        if not issubclass(model_cls, EmbeddingModel):
            raise ValueError(f"{path}: holds a {model_cls.__module__}.{model_cls.__qualname__} checkpoint (task "
                             f"{getattr(model_cls, 'task', None)!r}); FaceEmbedder needs a recognition model, a "
                             f"{EmbeddingModel.__module__}.{EmbeddingModel.__qualname__} subclass (FaceNetTriplet, "
                             f"ArcFaceModel); landmark checkpoints are read by LandmarkPredictor")
        model = model_cls.load_from_checkpoint(path, map_location=device, weights_only=False)
        data = dict(config.get("data") or {})
        kw = dict(image_size=model.image_size, channels=model.channels, flip_tta=model.flip_tta,
                  **data_normalisation(data))
        kw.update({k: data[k] for k in ("crop", "crop_scale") if data.get(k) is not None})
        kw.update(overrides)
        return cls(model, device=device, **kw)

    @torch.no_grad()
    def embed_crops(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings [N, D] (float32, CPU, unit norm) of prepared crops [N, C, S, S] (:meth:`crops`)."""
        out = []
        for s in range(0, len(x), self.batch_size):
            xb = x[s:s + self.batch_size].to(self.device)
            e = self.model(xb)["embedding"]
            if self.flip_tta:
                e = torch.nn.functional.normalize(e + self.model(torch.flip(xb, dims=[3]))["embedding"], dim=1)
            out.append(e.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, getattr(self.model, "embedding_dim", 0))

    def embed(self, images: Any, landmarks: Any = None) -> torch.Tensor:
        """Unit-norm embeddings [N, D] of face crops (a list of uint8 HxWx3 / HxW arrays, an [N, H, W, 3] array or
        an image tensor), or of faces given by ``landmarks``; see the class docstring for the preprocessing."""
        return self.embed_crops(self.crops(images, landmarks=landmarks)[0])
