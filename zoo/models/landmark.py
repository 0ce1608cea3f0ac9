"""Landmark regressor with the validation-signal head of seed 002.

Fuhl & Kasneci, "Learning to Validate the Quality of Detected Landmarks", ICMV 2019.

Output per landmark j: position ``(x_j, y_j)`` and validation signal ``v_j``; training minimises

    loss = coord_loss(p, g) + λ(t) · validation_term(v, ‖p − g‖₁)

(``zoo.losses.ValidationLoss``; Eq. 3 of the paper with the Manhattan distance), where λ(t) ramps linearly
from 0 to ``validation_weight`` over the first ``validation_warmup_steps`` optimizer steps. The paper's
weight 1 diverges from random initialisation on this data (the squared validation term swamps Wing
while errors are ~20 px); 0.1 with a ramp is stable (ARCHITECTURE.md, "Facts measured").

Parametrisation: the head's raw outputs ``o`` become pixels of the input crop as

    p = anchor + s · o,    v = s · o_v,    s = output_scale (default image_size / 2)

``anchor`` is the crop centre, or (default, ``anchor="mean_shape"``) the mean visible training shape
of the first training batch (all-reduced across ranks; stored in the checkpoint). Starting on the mean
shape with a near-zero last layer keeps initial errors small, which is what keeps the validation loss
(and L2) from exploding early. ``coord_space="pixels"`` (default) trains in crop pixels, so Wing's ω=10
means 10 px; ``"normalized"`` divides predictions, targets and ``v`` by ``image_size`` (then use
ω≈0.1 and the like).

The coordinate loss follows a *loss-stage schedule* (paper: L2, then L1, then Wing ω=10 ε=2) that the model
owns (``model.loss_schedule``, stored in checkpoints): at every training epoch start the model picks the stage
whose start is the largest one <= the current epoch (:func:`stage_index`); each stage starts at ``epoch``
(absolute) or at ``fraction`` · ``trainer.max_epochs``, so a resumed run lands in the right stage.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from pathlib import Path

import torch
from torch import nn

from zoo.checks import check_bool, check_choice, check_path, check_positive
from zoo.loggers import flatten_metrics
from zoo.models.base import ZooModule
from zoo.models.backbones import create_backbone
from zoo.models.heads import LandmarkHead, ValidationHead

COORD_SPACES = ("pixels", "normalized")
VALIDATION_TARGETS = ("distance", "log_distance")
ANCHORS = ("mean_shape", "centre")
DEFAULT_SCHEDULE = ({"epoch": 0, "loss": "l2"}, {"epoch": 10, "loss": "l1"},
                    {"epoch": 20, "loss": "wing", "omega": 10.0, "epsilon": 2.0})


class LossParts(NamedTuple):
    """Per-sample ([B]) loss terms; ``validation`` is None without the validation head."""

    total: torch.Tensor
    coord: torch.Tensor
    validation: torch.Tensor | None


def check_loss_schedule(schedule: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate ``[{epoch|fraction: ..., loss: name, **kwargs}, ...]`` and return plain dicts.

    The first stage must start at epoch 0 (or fraction 0); starts must increase; each stage names
    either ``epoch`` (int >= 0) or ``fraction`` (float in [0, 1)), not both.
    """
    if not schedule:
        raise ValueError("model.loss_schedule must list at least one stage, e.g. [{epoch: 0, loss: l2}]")
    out, last = [], -1.0
    for i, st in enumerate(schedule):
        st = dict(st)
        key = f"model.loss_schedule[{i}]"
        if "loss" not in st or not isinstance(st["loss"], str):
            raise ValueError(f"{key}: needs a 'loss' name (e.g. l2, l1, wing), got {st}")
        has_e, has_f = st.get("epoch") is not None, st.get("fraction") is not None
        if has_e == has_f:
            raise ValueError(f"{key}: give exactly one of 'epoch' (int >= 0) or 'fraction' (in [0, 1)), got {st}")
        if has_e:
            if not isinstance(st["epoch"], int) or st["epoch"] < 0:
                raise ValueError(f"{key}.epoch must be an integer >= 0, got {st['epoch']!r}")
        elif not (0.0 <= float(st["fraction"]) < 1.0):
            raise ValueError(f"{key}.fraction must be in [0, 1), got {st['fraction']!r}")
        start = float(st["epoch"]) if has_e else float(st["fraction"])
        if i == 0 and start != 0:
            raise ValueError(f"{key}: the first stage must start at epoch 0 (or fraction 0), got {st}")
        if i > 0 and (has_e != (out[0].get("epoch") is not None) or start <= last):
            raise ValueError(f"{key}: stages must use the same unit (epoch or fraction) and strictly increasing "
                             f"starts; got {st} after start {last}")
        last = start
        out.append(st)
    return out


def stage_index(schedule: Sequence[Mapping[str, Any]], epoch: int, max_epochs: int | None) -> int:
    """Index of the stage active at ``epoch`` (fractions resolve to ``round(fraction · max_epochs)``)."""
    idx = 0
    for i, st in enumerate(schedule):
        if st.get("epoch") is not None:
            start = int(st["epoch"])
        else:
            if not max_epochs or max_epochs < 0:
                raise ValueError("model.loss_schedule uses 'fraction' but trainer.max_epochs is not set (> 0)")
            start = int(round(float(st["fraction"]) * max_epochs))
        if epoch >= start:
            idx = i
    return idx


class LandmarkRegressor(ZooModule):
    """Landmark regression LightningModule (seed 002 net by default, any timm backbone by name).

    ``forward(images)`` returns ``{"landmarks": [B, L, 2] crop pixels, "validation": [B, L] px or None}``.
    ``training_step`` returns ``{"loss", "per_sample_loss" [B] (detached), "index" [B]}`` for the LPBB
    sampler's feedback callback.
    """

    #: what a ModelCheckpoint/EarlyStopping with ``monitor: null`` watches (zoo.run.build_callbacks)
    default_monitor = ("val/nme", "min")

    task = "landmarks"

    def __init__(
        self,
        num_landmarks: int | None = None,
        image_size: int | None = None,
        channels: int | None = None,
        scheme: str | None = None,
        flip_permutation: list[int] | None = None,
        backbone: str = "fuhl2019",
        backbone_kwargs: dict[str, Any] | None = None,
        head_hidden: int = 256,
        dropout: float = 0.0,
        validation_head: bool = True,
        validation_distance: str = "manhattan",
        validation_weight: float = 0.1,
        validation_warmup_steps: int = 300,
        validation_target: str = "distance",
        validation_eps: float = 1.0,
        validation_detach: bool = False,
        loss_schedule: Sequence[Mapping[str, Any]] = DEFAULT_SCHEDULE,
        coord_space: str = "pixels",
        anchor: str = "mean_shape",
        output_scale: float | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        channels_last: bool = True,
        metrics: dict[str, Any] | None = None,
        subset_names: list[str] | None = None,
        test_time_flip: bool = False,
        init_from: str | None = None,
    ) -> None:
        args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__(optimizer, scheduler, scheduler_interval, channels_last)
        for key, val in (("num_landmarks", num_landmarks), ("image_size", image_size), ("channels", channels)):
            if not isinstance(val, int) or val <= 0:
                raise ValueError(f"model.{key} must be a positive integer (train.py fills it from the datamodule's "
                                 f"DataInfo when null), got {val!r}")
        if coord_space not in COORD_SPACES:
            raise ValueError(f"model.coord_space must be one of {COORD_SPACES}, got {coord_space!r}")
        if anchor not in ANCHORS:
            raise ValueError(f"model.anchor must be one of {ANCHORS}, got {anchor!r}")
        if not (isinstance(validation_weight, (int, float)) and validation_weight >= 0):
            raise ValueError(f"model.validation_weight must be a number >= 0, got {validation_weight!r}")
        if not isinstance(validation_warmup_steps, int) or validation_warmup_steps < 0:
            raise ValueError(f"model.validation_warmup_steps must be an integer >= 0, got {validation_warmup_steps!r}")
        if output_scale is not None and output_scale <= 0:
            raise ValueError(f"model.output_scale must be > 0 or null, got {output_scale!r}")
        self.loss_schedule = check_loss_schedule(loss_schedule)
        check_bool("model.test_time_flip", test_time_flip)
        check_choice("model.validation_target", validation_target, VALIDATION_TARGETS)
        check_positive("model.validation_eps", validation_eps)
        check_bool("model.validation_detach", validation_detach)
        if test_time_flip and not flip_permutation:
            raise ValueError("model.test_time_flip=true needs model.flip_permutation (the left/right landmark "
                             "permutation; train.py fills it from the datamodule's scheme); got none")
        if init_from is not None:
            check_path("model.init_from", init_from, kind="file")
        self.init_from = init_from
        self.save_config({k: v for k, v in args.items() if k != "init_from"})

        self.backbone = create_backbone(backbone, in_chans=channels, **(backbone_kwargs or {}))
        detached = validation_head and validation_detach
        self.head = LandmarkHead(self.backbone.num_features, num_landmarks, hidden=head_hidden,
                                 validation=validation_head and not detached, dropout=dropout)
        # the validation signal from its own head on detached backbone features: its loss leaves the landmarks alone
        self.validation_net = ValidationHead(self.backbone.num_features, num_landmarks, hidden=head_hidden) \
            if detached else None
        self.scale = float(output_scale or image_size / 2.0)
        centre = (image_size - 1) / 2.0  # 0-based pixel-centre convention
        self.register_buffer("anchor", torch.full((num_landmarks, 2), centre))
        self.register_buffer("anchor_ready", torch.tensor(anchor == "centre"))
        perm = torch.as_tensor(list(flip_permutation or range(num_landmarks)), dtype=torch.long)
        self.register_buffer("flip_index", perm, persistent=False)

        self.stage = -1
        self.criterion: nn.Module = self._build_criterion(0)
        self.stage = 0
        self.val_metrics = self._make_metrics()
        self.test_metrics = self._make_metrics()
        self.apply_channels_last()

    # ---- losses -------------------------------------------------------------------------------------
    def _coord_loss(self, stage: int) -> nn.Module:
        from zoo.losses import build

        st = dict(self.loss_schedule[stage])
        name = st.pop("loss")
        st.pop("epoch", None)
        st.pop("fraction", None)
        return build(name, reduction="none", **st)

    def _build_criterion(self, stage: int) -> nn.Module:
        coord = self._coord_loss(stage)
        if not self.hparams.validation_head:
            return coord
        from zoo.losses import ValidationLoss

        eps = float(self.hparams.validation_eps)
        if self.hparams.coord_space == "normalized":
            eps /= float(self.hparams.image_size)
        return ValidationLoss(coord_loss=coord, distance=self.hparams.validation_distance,
                              weight=self.current_validation_weight(0), reduction="none",
                              target=self.hparams.validation_target, eps=eps)

    def set_loss_stage(self, stage: int) -> bool:
        """Switch the coordinate loss to ``loss_schedule[stage]``; returns True when it changed."""
        if stage == self.stage:
            return False
        if not 0 <= stage < len(self.loss_schedule):
            raise ValueError(f"loss stage {stage} out of range for {len(self.loss_schedule)} stages")
        coord = self._coord_loss(stage)
        if self.hparams.validation_head:
            self.criterion.coord_loss = coord
        else:
            self.criterion = coord
        self.stage = stage
        return True

    def current_validation_weight(self, step: int | None = None) -> float:
        """λ(t) = validation_weight · min(1, (t + 1) / validation_warmup_steps) (no ramp when warm-up is 0)."""
        step = self.global_step if step is None else step
        w, n = float(self.hparams.validation_weight), self.hparams.validation_warmup_steps
        return w if n == 0 else w * min(1.0, (step + 1) / n)

    def loss_parts(self, out: Mapping[str, torch.Tensor | None], batch: Mapping[str, torch.Tensor]) -> LossParts:
        """Per-sample loss terms of ``out`` against ``batch`` (visible points only)."""
        pred, target = out["landmarks"], batch["landmarks"].to(out["landmarks"].dtype)
        weight = batch["visible"]
        target = torch.where(weight[..., None], target, pred.detach())  # NaN-free target for hidden points
        val = out["validation"]
        if self.hparams.coord_space == "normalized":
            s = float(self.hparams.image_size)
            pred, target = pred / s, target / s
            val = None if val is None else val / s
        if val is None:
            coord = self.criterion(pred, target, weight=weight)
            return LossParts(coord, coord, None)
        r = self.criterion(pred, val, target, weight=weight)
        return LossParts(r.total, r.coord, r.validation)

    def on_train_epoch_start(self) -> None:
        """Apply the loss schedule: the stage active at this epoch (logged as ``train/loss_stage``)."""
        i = stage_index(self.loss_schedule, self.current_epoch, self.trainer.max_epochs)
        if self.set_loss_stage(i) and self.trainer.is_global_zero:
            st = self.loss_schedule[i]
            args = {k: v for k, v in st.items() if k not in ("loss", "epoch", "fraction")}
            print(f"[zoo] epoch {self.current_epoch}: coordinate loss -> {st['loss']} {args or ''}")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["loss_stage"] = self.stage

    # ---- initialisation from another checkpoint (priming, seed 000 Table 2) ---------------------------
    def on_fit_start(self) -> None:
        # after a resume's restore (trainer.ckpt_path set): a resumed run keeps its own weights
        if self.init_from and not self.trainer.ckpt_path:
            from lightning.pytorch.utilities import rank_zero_info

            loaded = self.load_pretrained(self.init_from)
            rank_zero_info(f"[zoo] initialised {len(loaded)} tensors (backbone, head, anchor) from {self.init_from}")

    def load_pretrained(self, path: str | Path) -> list[str]:
        """Copy every weight and buffer of landmark checkpoint ``path`` (backbone, head, mean-shape anchor) into
        this model: weights only (fresh optimiser, epoch count, loss stage). The checkpoint must come from a
        landmark model of the same architecture (backbone, head_hidden, num_landmarks, channels, validation head);
        anything else raises a ValueError naming ``model.init_from`` and the mismatching tensors."""
        from zoo.checkpoint import read as read_checkpoint

        p = Path(path)
        ckpt = read_checkpoint(p, "model.init_from")  # your own checkpoint (trusted)
        state = ckpt.get("state_dict", ckpt)
        own = self.state_dict()
        if not any(k.startswith("backbone.") for k in state) or not any(k.startswith("head.") for k in state):
            raise ValueError(f"model.init_from: {p} holds no 'backbone.*' and 'head.*' weights (not a zoo landmark "
                             f"checkpoint); expected a checkpoint written by train.py with a landmark model")
        bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
               if k in own and own[k].shape != v.shape]
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if bad or missing or unexpected:
            raise ValueError(f"model.init_from: {p} does not match this landmark model (same backbone, head_hidden, "
                             f"num_landmarks, channels and validation head expected); shape mismatches {bad[:5]}, "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.load_state_dict(state, strict=True)
        return sorted(state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # weights restored from a checkpoint (resume, load_from_checkpoint) must not be replaced by init_from later
        self.init_from = None
        stage = checkpoint.get("loss_stage")
        if isinstance(stage, int) and 0 <= stage < len(self.loss_schedule):
            self.set_loss_stage(stage)

    # ---- forward ------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | None]:
        f = self.backbone(self.as_input(images))
        o, v = self.head(f)
        if self.validation_net is not None:
            v = self.validation_net(f.detach())
        lm = self.anchor + self.scale * o
        if v is None:
            return {"landmarks": lm, "validation": None}
        if self.hparams.validation_target == "log_distance":  # raw output = log((v + eps) / eps)
            v = float(self.hparams.validation_eps) * torch.expm1(v.clamp(max=30.0))
        else:
            v = self.scale * v
        return {"landmarks": lm, "validation": v}

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """:meth:`forward`, or with ``test_time_flip`` the mean of the predictions for the image and its mirror
        image (mirrored back: ``x -> W - 1 - x`` and the left/right permutation; the validation signal is averaged
        the same way). What validation, test and evaluate.py use."""
        out = self(images)
        if not self.hparams.test_time_flip:
            return out
        mirrored = self(torch.flip(images, dims=[3]))
        lm = mirrored["landmarks"][:, self.flip_index]
        lm = torch.stack([(images.shape[3] - 1) - lm[..., 0], lm[..., 1]], dim=-1)
        val = out["validation"]
        if val is not None:
            val = 0.5 * (val + mirrored["validation"][:, self.flip_index])
        return {"landmarks": 0.5 * (out["landmarks"] + lm), "validation": val}

    @torch.no_grad()
    def _maybe_init_anchor(self, batch: Mapping[str, torch.Tensor]) -> None:
        """Set the anchor to the mean visible shape of the first training batch (mean over ranks)."""
        if bool(self.anchor_ready):
            return
        vis = batch["visible"].to(self.anchor.dtype)[..., None]
        lm = torch.nan_to_num(batch["landmarks"].to(self.anchor.dtype))
        num, den = (lm * vis).sum(0), vis.sum(0)
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            num = trainer.strategy.reduce(num, reduce_op="sum")
            den = trainer.strategy.reduce(den, reduce_op="sum")
        mean = torch.where(den > 0, num / den.clamp_min(1), self.anchor)
        self.anchor.copy_(mean)
        self.anchor_ready.fill_(True)

    # ---- steps ----------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        self._maybe_init_anchor(batch)
        if self.hparams.validation_head:
            self.criterion.weight = self.current_validation_weight()
        out = self(batch["image"])
        with self.guarding("network output", out["landmarks"], out["validation"]):
            parts = self.loss_parts(out, batch)
        loss = parts.total.mean()
        self.guard("training loss", loss)
        bs = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/coord_loss", parts.coord.mean(), batch_size=bs)
        if parts.validation is not None:
            self.log("train/validation_loss", parts.validation.mean(), batch_size=bs)
            self.log("train/validation_weight", float(self.criterion.weight), batch_size=bs)
        self.log("train/loss_stage", float(self.stage), batch_size=bs)
        return {"loss": loss, "per_sample_loss": parts.total.detach(), "index": batch["index"]}

    @torch.no_grad()
    def per_sample_loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Current per-sample training loss of ``batch`` in eval mode, without gradients (BB refresh mode)."""
        was_training = self.training
        self.eval()
        try:
            parts = self.loss_parts(self(batch["image"]), batch)
        finally:
            self.train(was_training)
        return parts.total.detach(), batch["index"]

    def _eval_step(self, batch: Mapping[str, torch.Tensor], metrics: nn.Module, prefix: str) -> None:
        out = self.predict(batch["image"])
        self.guard(f"{prefix} output (landmarks)", out["landmarks"], batch)  # evaluation: no step to keep sync-free
        self.guard(f"{prefix} output (validation signal)", out["validation"], batch)
        parts = self.loss_parts(out, batch)
        bs = batch["image"].shape[0]
        self.log(f"{prefix}/loss", parts.total.mean(), batch_size=bs, sync_dist=True)
        metrics.update(out["landmarks"].float(), batch["landmarks"], batch["visible"], batch["norm"],
                       validation=None if out["validation"] is None else out["validation"].float(),
                       subset=self._subset_for(metrics, batch.get("subset")), index=batch["index"])

    def _subset_for(self, metrics: nn.Module, subset: Any) -> Any:
        """Per-sample subset tags the metric can take ([B] ids, [B, S] attribute flags with
        ``subset_names`` — both filled from the datamodule's DataInfo — or names listed in
        ``model.metrics.subset_names``); other forms are not passed on, with a one-time warning."""
        if subset is None:
            return None
        names = getattr(metrics, "subset_names", None)
        if torch.is_tensor(subset) and (subset.dim() == 1 or (subset.dim() == 2 and names is not None)):
            return subset
        if isinstance(subset, (list, tuple)) and names is not None:
            return subset
        if not getattr(self, "_warned_subset", False):
            self._warned_subset = True
            kind = f"tensor {tuple(subset.shape)}" if torch.is_tensor(subset) else "names"
            warnings.warn(f"per-subset metrics are off: the datamodule's 'subset' ({kind}) needs [B] ids or "
                          f"model.metrics.subset_names=[...] listing the subset names", stacklevel=2)
        return None

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def _log_metrics(self, metrics: nn.Module, prefix: str) -> dict[str, Any]:
        res = metrics.compute()
        scalars = {}
        for k, v in flatten_metrics(res).items():
            scalars[f"{prefix}/{k}"] = v
        main = scalars.pop(f"{prefix}/nme", None)
        if main is not None:
            self.log(f"{prefix}/nme", main, prog_bar=True)
        self.log_dict(scalars, prog_bar=False)
        metrics.reset()
        return res

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()
        self._test_samples: dict[str, Any] | None = None

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, "test")
        if batch_idx == 0 and self.trainer.is_global_zero:
            k = min(8, batch["image"].shape[0])
            with torch.no_grad():
                out = self.predict(batch["image"][:k])
            self._test_samples = {
                "image": batch["image"][:k].float().cpu().numpy(), "target": batch["landmarks"][:k].cpu().numpy(),
                "pred": out["landmarks"].float().cpu().numpy(),
                "validation": None if out["validation"] is None else out["validation"].float().cpu().numpy()}

    def on_test_epoch_end(self) -> None:
        # keep all ranks' raw values for write_report before the metric is reset
        with self.test_metrics.sync_context():
            values = self.test_metrics.values()
        res = self._log_metrics(self.test_metrics, "test")
        self.test_results = {"metrics": res, "values": values, "samples": getattr(self, "_test_samples", None)}

    # ---- metrics and report --------------------------------------------------------------------------
    def _make_metrics(self) -> nn.Module:
        """zoo.metrics LandmarkMetrics; normalisation ``given`` (the datamodule's protocol ``norm``) unless
        ``model.metrics`` says otherwise."""
        from zoo.metrics.landmarks import LandmarkMetrics

        kw = dict(self.hparams.metrics or {})
        kw.setdefault("normalization", "given")
        if self.hparams.get("subset_names"):
            kw.setdefault("subset_names", list(self.hparams.subset_names))
        if self.hparams.scheme is not None:
            kw.setdefault("scheme", self.hparams.scheme)
        return LandmarkMetrics(**kw)

    def write_figures(self, out: Path) -> None:
        """``ced.png`` (cumulative error distribution), ``validation.png`` (sorted error vs validation signal,
        paper Fig. 4; with the validation head), ``samples.png`` (test crops, predictions coloured by the
        validation signal)."""
        write_landmark_figures(self.test_results, out)

    @staticmethod
    def default_optimizer(params: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)


def sample_grid(images: Any, pred: Any, target: Any | None = None, validation: Any | None = None,
                cols: int = 4, title: str | None = None) -> Any:
    """RGB uint8 array [H, W, 3]: one :func:`zoo.metrics.landmarks.sample_figure` per crop
    (``images`` [N, C, H, W], ``pred``/``target`` [N, L, 2] px, ``validation`` [N, L]), tiled ``cols`` per row."""
    import numpy as np

    from zoo.metrics.landmarks import sample_figure

    tiles = []
    for i in range(len(images)):
        fig = sample_figure(images[i], pred[i], None if validation is None else validation[i],
                            None if target is None else target[i], title=title if i == 0 else None)
        fig.canvas.draw()
        tiles.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    if not tiles:
        raise ValueError("sample_grid: no images")
    h, w = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, w - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    cols = max(1, min(cols, len(tiles)))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[r:r + cols], axis=1) for r in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


def write_landmark_figures(results: Mapping[str, Any], out: Path) -> None:
    """PNGs from ``{"metrics": dict, "values": LandmarkMetrics.values(), "samples": dict}`` into ``out``."""
    import matplotlib.image

    from zoo.metrics.landmarks import ced_figure, validation_figure

    vals = results.get("values") or {}
    if vals.get("nme_face") is not None:
        ced_figure({"test": vals["nme_face"]}).savefig(out / "ced.png", dpi=100, bbox_inches="tight")
    if vals.get("validation") is not None:
        validation_figure(vals["err_px"], vals["validation"], vals["visible"]).savefig(
            out / "validation.png", dpi=100, bbox_inches="tight")
    smp = results.get("samples")
    if smp:
        grid = sample_grid(smp["image"], smp["pred"], smp["target"], smp["validation"],
                           title="test samples (colour: validation signal, px)")
        matplotlib.image.imsave(out / "samples.png", grid)
