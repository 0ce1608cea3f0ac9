"""Face-recognition LightningModules: FaceNet with the triplet loss and ArcFace-style margin losses.

Both learn an embedder ``image -> e / ||e||_2`` (backbone from :func:`zoo.models.backbones.create_backbone`
plus an :class:`~zoo.models.embedding_head.EmbeddingHead`) and return ``{"embedding": [B, D]}``
(L2-normalised), so verification compares faces by the cosine similarity ``s(a, b) = a·b`` (seed 000, Eq. 1).

* :class:`FaceNetTriplet` (Schroff et al., CVPR 2015; OpenFace nn4.small2 at 96×96 by default): 128-d
  embedding trained with ``zoo.losses.TripletLoss`` ``L = mean over mined triplets of
  [||a-p||² - ||a-n||² + α]_+`` (α = 0.2, semi-hard negatives by default), batches of P identities × K images.
* :class:`ArcFaceModel` (Deng et al., CVPR 2019; seed 003: ResNet-50, BN-Dropout-FC-BN, 512-d): a margin
  softmax over class centres ``W`` owned by the loss (``zoo.losses.ArcFaceLoss``: logit of the true class
  ``s·cos(θ_y + m)``; ``CosFaceLoss``: ``s·(cos θ_y − m)``; combined ``s·(cos(m1·θ_y + m2) − m3)``);
  the centres are optimised with the network (their own learning rate with ``centre_lr``).

Shared behaviour lives in :class:`EmbeddingModel`: optimiser/scheduler from plain config dicts, verification
metrics on the validation pairs every epoch (``val/accuracy``, ``val/auc``, ``val/eer``, ``val/tar@far=...``),
optional flip test-time augmentation, weight initialisation from another checkpoint (``init_from``, used by
the priming workflow), and :meth:`EmbeddingModel.write_report` for ``evaluate.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

import zoo.models.nn4small  # noqa: F401  (registers the "nn4small" backbone)
from zoo.checkpoint import read as read_checkpoint
from zoo.loggers import flatten_metrics
from zoo.models.backbones import create_backbone
from zoo.models.base import ZooModule, plain
from zoo.models.embedding_head import EmbeddingHead

class Embedder(nn.Module):
    """``image [B, C, H, W] -> F.normalize(head(backbone(image)))`` ``[B, D]``: the exportable network."""

    def __init__(self, backbone: nn.Module, head: EmbeddingHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(image)), dim=1)


class EmbeddingModel(ZooModule):
    """Base class of the recognition models (see module docstring). Subclasses implement :meth:`compute_loss`.

    Args:
        backbone: a name for :func:`~zoo.models.backbones.create_backbone` (``"nn4small"``, any timm name).
        embedding_dim: size D of the embedding.
        head: ``"linear"`` (FaceNet) or ``"bn_dropout_fc_bn"`` (ArcFace), see :mod:`zoo.models.embedding_head`.
        dropout: dropout rate of the head.
        channels, image_size: input format (``null`` in configs: filled from the datamodule's DataInfo).
        optimizer: ``optimizer(param_groups) -> torch.optim.Optimizer`` (a Hydra ``_partial_``, the
            ``configs/model/optimizer`` group; default Adam, lr 1e-3). ArcFace passes two parameter groups
            (embedder, class centres) so the centres can have their own lr.
        scheduler: ``scheduler(optimizer)`` (``configs/model/scheduler`` group) or None; stepped per
            ``scheduler_interval`` ("epoch" or "step").
        flip_tta: evaluate with the sum of the embeddings of the image and its mirror image.
        val_folds, far_targets: verification protocol (LFW 10-fold accuracy; TAR at these FARs).
        init_from: a checkpoint to initialise the embedder (and, where allowed, the class centres) from at
            the start of training (weights only: a fresh optimiser, epoch 0). Ignored when the trainer resumes.
        channels_last: run the network in channels-last memory format (faster convolutions on CPU).
    """

    task = "identities"
    #: what a ModelCheckpoint/EarlyStopping with ``monitor: null`` watches (zoo.run.build_callbacks)
    default_monitor = ("val/eer", "min")

    def __init__(
        self,
        backbone: str = "nn4small",
        embedding_dim: int = 128,
        head: str = "linear",
        dropout: float = 0.0,
        channels: int | None = 3,
        image_size: int | None = 96,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        flip_tta: bool = False,
        val_folds: int = 10,
        far_targets: tuple[float, ...] | list[float] = (0.1, 0.01, 0.001),
        seed: int = 0,
        init_from: str | None = None,
        channels_last: bool = False,
        backbone_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, channels_last)
        for key, val in (("channels", channels), ("image_size", image_size)):
            if not isinstance(val, int) or val <= 0:
                raise ValueError(f"model.{key} must be a positive integer (null is filled from the data by "
                                 f"train.py), got {val!r}")
        net = create_backbone(backbone, in_chans=channels, **dict(plain(backbone_kwargs) or {}))
        self.embedder = Embedder(net, EmbeddingHead(net.num_features, embedding_dim, head, dropout))
        self.embedding_dim, self.channels, self.image_size = embedding_dim, channels, image_size
        self.flip_tta, self.val_folds, self.far_targets = bool(flip_tta), int(val_folds), tuple(far_targets)
        self.seed, self.init_from = seed, init_from
        self.apply_channels_last()
        self.val_metric: Any = None
        self.test_metric: Any = None

    # ---- forward -------------------------------------------------------------------------------------------
    def embed(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__}: expected images [B, {self.channels}, H, W], "
                             f"got {tuple(image.shape)}")
        return self.embedder(self.as_input(image))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": self.embed(image)}

    # ---- training -------------------------------------------------------------------------------------------
    def compute_loss(self, embedding: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                                       dict[str, float]]:
        """Return (mean loss, per-sample losses [B] or None, scalar logs)."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        emb = self.embed(batch["image"])
        with self.guarding("network output (embedding)", emb):
            loss, per_sample, logs = self.compute_loss(emb, batch["identity"])
        self.guard("training loss", loss)
        bs = emb.shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=bs)
        for k, v in logs.items():
            self.log(f"train/{k}", v, on_step=True, on_epoch=True, batch_size=bs)
        out = {"loss": loss, "index": batch["index"]}
        if per_sample is not None:
            out["per_sample_loss"] = per_sample.detach()
        return out

    # ---- evaluation -----------------------------------------------------------------------------------------
    def _limited(self, split: str) -> bool:
        """True when the trainer evaluates only part of the split (fast_dev_run, limit_<split>_batches)."""
        t = self._trainer
        if t is None:
            return False
        if getattr(t, "fast_dev_run", False):
            return True
        num = getattr(t, f"num_{split}_batches", None)
        loaders = getattr(t, f"{split}_dataloaders", None)
        num = num[0] if isinstance(num, (list, tuple)) and num else num
        loader = loaders[0] if isinstance(loaders, (list, tuple)) and loaders else loaders
        try:
            return num is not None and num < len(loader)
        except TypeError:  # no length (iterable loader): cannot tell
            return False

    def _make_metric(self, split: str) -> Any:
        from zoo.metrics.verification import VerificationMetrics

        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        # a pair list names every sample of the split: with a partial pass, pairs are generated from what was seen
        pairs = dm.pairs(split) if dm is not None and hasattr(dm, "pairs") and not self._limited(split) else None
        return VerificationMetrics(pairs=pairs, folds=self.val_folds, far_targets=self.far_targets, seed=self.seed,
                                   flip_tta=self.flip_tta).to(self.device)

    def _eval_update(self, metric: Any, batch: Mapping[str, torch.Tensor]) -> None:
        image = batch["image"]
        emb = self.embed(image)
        self.guard("evaluation output (embedding)", emb, batch)
        flipped = self.embed(torch.flip(image, dims=[3])) if self.flip_tta else None
        metric.update(emb, batch["identity"], batch["index"], embeddings_flipped=flipped)

    def _compute_and_log(self, metric: Any, split: str) -> dict[str, Any] | None:
        try:
            res = metric.compute()
        except ValueError as e:
            if not self._limited(split):
                raise
            rank_zero_warn(f"{split} verification metrics skipped on a partial {split} pass "
                           f"(fast_dev_run / limit_{split}_batches): {e}")
            return None
        for k, v in flatten_metrics(res).items():
            self.log(f"{split}/{k}", v, prog_bar=k in ("accuracy", "eer"))
        return res

    def on_validation_epoch_start(self) -> None:
        self.val_metric = self._make_metric("val")

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_update(self.val_metric, batch)

    def on_validation_epoch_end(self) -> None:
        if self.val_metric is not None and not self.trainer.sanity_checking:
            self._compute_and_log(self.val_metric, "val")
        self.val_metric = None

    def on_test_epoch_start(self) -> None:
        self.test_metric = self._make_metric("test")
        self.test_results = None

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_update(self.test_metric, batch)

    def on_test_epoch_end(self) -> None:
        res = self._compute_and_log(self.test_metric, "test")
        self.test_results = None if res is None else {"metrics": res, "figures": self.test_metric.figures}

    def write_figures(self, out: Path) -> None:
        """``roc.png`` and ``score_histogram.png`` of the last ``trainer.test`` run."""
        figs = self.test_results["figures"]()
        figs["roc"].savefig(out / "roc.png")
        figs["scores"].savefig(out / "score_histogram.png")

    # ---- initialisation from another checkpoint (priming) -----------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            self.check_data()

    def on_fit_start(self) -> None:
        # after a resume's restore (trainer.ckpt_path is set then): a resumed run keeps its own weights
        if self.init_from and not self.trainer.ckpt_path:
            info = self.load_pretrained(self.init_from)
            rank_zero_info(f"[zoo] initialised {len(info['loaded'])} tensors from {self.init_from}"
                           + (f"; re-initialised {info['reinitialised']}" if info["reinitialised"] else ""))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # weights restored from a checkpoint (resume, load_from_checkpoint) must not be replaced by init_from later
        self.init_from = None

    def check_data(self) -> None:
        """Validate the datamodule against the model before training: the validation pairs split into
        ``model.val_folds`` folds (subclasses add checks, e.g. ArcFace's class count)."""
        from zoo.metrics.verification import VerificationMetrics

        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "pairs") or (getattr(dm, "datasets", None) or {}).get("val") is None:
            return
        try:
            VerificationMetrics._parse_pairs(dm.pairs("val"), self.val_folds)
        except ValueError as e:
            raise ValueError(f"model.val_folds={self.val_folds}: the validation pairs do not split into that many "
                             f"folds ({e}); lower model.val_folds (and data.pair_folds), or give more validation "
                             f"pairs (data.num_pairs / a longer pairs file)") from e

    def load_pretrained(self, path: str | Path) -> dict[str, list[str]]:
        """Copy the embedder weights (backbone + head) of checkpoint ``path`` into this model; subclasses decide
        about other weights (:meth:`pretrained_extra`). Returns the loaded/reinitialised key lists."""
        p = Path(path)
        ckpt = read_checkpoint(p, "model.init_from")  # your own checkpoint (trusted)
        state = ckpt.get("state_dict", ckpt)
        own = self.state_dict()
        emb = {k: v for k, v in state.items() if k.startswith("embedder.")}
        if not emb:
            raise ValueError(f"model.init_from: {p} holds no 'embedder.*' weights (not a zoo recognition checkpoint)")
        bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in emb.items()
               if k in own and own[k].shape != v.shape]
        missing = sorted(set(k for k in own if k.startswith("embedder.")) - set(emb))
        unexpected = sorted(set(emb) - set(own))
        if bad or missing or unexpected:
            raise ValueError(f"model.init_from: {p} does not match this model's embedder (same backbone, head, "
                             f"embedding_dim and channels expected); shape mismatches {bad[:5]}, "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        extra, reinit = self.pretrained_extra(state, str(p))
        self.load_state_dict({**emb, **extra}, strict=False)
        return {"loaded": sorted(emb) + sorted(extra), "reinitialised": reinit}

    def pretrained_extra(self, state: Mapping[str, torch.Tensor],
                         path: str) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Weights besides the embedder to take from a pretrained ``state`` and the keys left re-initialised."""
        return {}, []

    # ---- optimisation ------------------------------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.embedder.parameters() if p.requires_grad]}]


class FaceNetTriplet(EmbeddingModel):
    """FaceNet (Schroff et al., CVPR 2015) as trained by OpenFace / Kortylewski et al.: nn4small at 96×96, 128-d
    L2-normalised embedding, triplet loss with margin α = 0.2 and a configurable miner (semi-hard default).

    Args (beyond :class:`EmbeddingModel`): ``margin``, ``miner`` ("semihard", "batch_hard", "batch_all",
    "openface_random"), ``loss_kwargs`` (other ``zoo.losses.TripletLoss`` arguments: ``distance``,
    ``average_nonzero``, ...).

    The loss is computed per anchor (``reduction="none"``: ℓ_a = mean over the n_a triplets with anchor a) and
    reduced as ``L = Σ_a n_a ℓ_a / Σ_a n_a``, which is FaceNet's mean over all mined triplets (with
    ``average_nonzero`` the per-anchor means are over the active triplets); ℓ_a is the per-sample loss that
    ``training_step`` returns for loss-driven samplers.
    """

    def __init__(self, margin: float = 0.2, miner: str = "semihard", loss_kwargs: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from zoo.losses import TripletLoss

        self.save_config({"margin": margin, "miner": miner, "loss_kwargs": loss_kwargs, **kwargs})
        extra = dict(plain(loss_kwargs) or {})
        if "reduction" in extra:
            raise ValueError("model.loss_kwargs.reduction is set by FaceNetTriplet (per anchor, then the mean over "
                             "triplets); remove it")
        self.loss = TripletLoss(margin=margin, miner=miner, reduction="none", **extra)

    def compute_loss(self, embedding, identity):
        out = self.loss(embedding, identity, return_info=True)
        per_anchor, n = out.loss, out.num_triplets
        if n:
            counts = torch.bincount(out.anchors, minlength=embedding.shape[0]).to(per_anchor.dtype)
            loss = (per_anchor * counts).sum() / counts.sum()
        else:
            loss = per_anchor.sum() * 0.0  # empty batch: zero, still connected to the graph
        return loss, per_anchor, {"triplets": float(n)}


class ArcFaceModel(EmbeddingModel):
    """ArcFace (Deng et al., CVPR 2019) with the seed-003 setup: timm backbone (ResNet-50 default), BN-Dropout-
    FC-BN 512-d embedding, an additive-margin softmax loss whose class centres are trained with the network.

    Args (beyond :class:`EmbeddingModel`):
        num_identities: number of training identities (classes); ``null`` in configs is filled from the data.
        loss: ``zoo.losses.build`` name: ``"arcface"``, ``"cosface"`` or ``"combined_margin"``.
        loss_kwargs: its arguments (``scale``, ``margin``, ``subcenters``, ``margin_grad``, ``m1/m2/m3``).
        centre_lr: learning rate of the class centres (default: the optimiser's lr); ``centre_weight_decay``
            likewise (default: the optimiser's).
        reinit_centres: with ``init_from``, re-initialise the class centres instead of loading them (needed
            whenever the identities differ from the pretraining data, e.g. priming on synthetic identities).

    Logs ``train/acc``: argmax of the margin-free logits ``s·cos θ`` against the identity.
    """

    def __init__(self, num_identities: int | None = None, loss: str = "arcface",
                 loss_kwargs: Mapping[str, Any] | None = None, centre_lr: float | None = None,
                 centre_weight_decay: float | None = None, reinit_centres: bool = False,
                 backbone: str = "resnet50", embedding_dim: int = 512, head: str = "bn_dropout_fc_bn",
                 dropout: float = 0.5, image_size: int | None = 112, **kwargs: Any) -> None:
        if isinstance(num_identities, bool) or not isinstance(num_identities, int) or num_identities < 2:
            raise ValueError(f"model.num_identities must be an integer >= 2 (null is filled from the data's "
                             f"training identities by train.py), got {num_identities!r}")
        for key, val in (("centre_lr", centre_lr), ("centre_weight_decay", centre_weight_decay)):
            if val is not None and (not isinstance(val, (int, float)) or val < 0 or (key == "centre_lr" and val == 0)):
                raise ValueError(f"model.{key} must be a {'positive' if key == 'centre_lr' else 'non-negative'} "
                                 f"number or null, got {val!r}")
        super().__init__(backbone=backbone, embedding_dim=embedding_dim, head=head, dropout=dropout,
                         image_size=image_size, **kwargs)
        from zoo.losses import build

        self.save_config({
            "num_identities": num_identities, "loss": loss, "loss_kwargs": loss_kwargs, "centre_lr": centre_lr,
            "centre_weight_decay": centre_weight_decay, "reinit_centres": reinit_centres, "backbone": backbone,
            "embedding_dim": embedding_dim, "head": head, "dropout": dropout, "image_size": image_size, **kwargs})
        extra = dict(plain(loss_kwargs) or {})
        if "reduction" in extra:
            raise ValueError("model.loss_kwargs.reduction is set by ArcFaceModel (per sample, then the mean); "
                             "remove it")
        self.num_identities, self.loss_name = num_identities, loss
        self.loss = build(loss, embedding_dim=embedding_dim, num_classes=num_identities, reduction="none", **extra)
        if not isinstance(getattr(self.loss, "weight", None), nn.Parameter):
            raise ValueError(f"model.loss={loss!r} is not a margin loss with class centres (expected one of "
                             f"'arcface', 'cosface', 'combined_margin')")
        self.centre_lr, self.centre_weight_decay = centre_lr, centre_weight_decay
        self.reinit_centres = bool(reinit_centres)

    def check_data(self) -> None:
        super().check_data()
        dm = getattr(self.trainer, "datamodule", None)
        info = getattr(dm, "info", None) if dm is not None else None
        n = getattr(info, "num_identities", None)
        if n is not None and n > self.num_identities:
            raise ValueError(
                f"the training data has {n} identities but the {self.loss_name} margin head of {type(self).__name__} "
                f"was built for {self.num_identities} classes; set model.num_identities={n} (or null to fill it from "
                f"the data), and when fine-tuning from a checkpoint with other identities set "
                f"model.reinit_centres=true")

    def pretrained_extra(self, state, path):
        own = {k: v for k, v in self.state_dict().items() if k.startswith("loss.")}
        centres = {k: v for k, v in state.items() if k.startswith("loss.")}
        if self.reinit_centres or not centres:
            return {}, sorted(own)
        bad = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in centres.items()
               if k in own and own[k].shape != v.shape}
        if bad:
            k, (theirs, ours) = next(iter(bad.items()))
            raise ValueError(
                f"model.init_from: {path} has class centres {k} of shape {theirs} (its training identities) but this "
                f"model was built for {self.num_identities} identities {ours}; set model.reinit_centres=true to "
                f"re-initialise the class centres for the new identities (the embedder is kept)")
        return {k: v for k, v in centres.items() if k in own}, []

    def param_groups(self):
        groups = super().param_groups()
        centre_group: dict[str, Any] = {"params": [p for p in self.loss.parameters() if p.requires_grad]}
        if self.centre_lr is not None:
            centre_group["lr"] = float(self.centre_lr)
        if self.centre_weight_decay is not None:
            centre_group["weight_decay"] = float(self.centre_weight_decay)
        return groups + [centre_group]

    def compute_loss(self, embedding, identity):
        per_sample = self.loss(embedding, identity)
        with torch.no_grad():
            acc = (self.loss.logits(embedding).argmax(dim=1) == identity).float().mean()
        return per_sample.mean(), per_sample, {"acc": acc}
