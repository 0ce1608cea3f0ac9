"""The generic logic behind train.py and evaluate.py: composed config -> objects -> Lightning run.

Task-agnostic: the datamodule's :class:`~zoo.datamodules.samples.DataInfo` fills every ``null`` key of
``cfg.model`` that is a DataInfo field (num_landmarks, num_identities, channels, image_size,
flip_permutation, scheme), and the model class's ``task`` attribute must equal ``dm.info.task``.
Every checkpoint carries ``checkpoint["zoo"] = {"config", "model_class", "wandb_id"}`` (:mod:`zoo.checkpoint`)
so that evaluate.py and :mod:`zoo.models.inference` can rebuild the run without Hydra. The priming workflow
(``finetune:`` configs) lives above this module in :mod:`zoo.workflows.priming`; train.py picks it.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo import checkpoint as zoo_checkpoint
from zoo.checks import check_choice
from zoo.checkpoint import load_run_checkpoint
from zoo.datamodules.samples import DataInfo
from zoo.loggers import flatten_metrics

DATAINFO_FIELDS = tuple(f.name for f in dataclasses.fields(DataInfo) if f.name not in ("task", "sizes"))


# ---- config checks ----------------------------------------------------------------------------------
def _num(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def validate_config(cfg: DictConfig) -> None:
    """Fail before any work with a message naming the key when a numeric setting is out of range."""
    def need(key: str, ok, expected: str) -> None:
        v = _num(cfg, key)
        if v is not None and not ok(v):
            raise ValueError(f"config key {key}={v!r} is invalid; expected {expected}")

    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    need("trainer.max_epochs", lambda v: is_int(v) and (v > 0 or v == -1), "an integer > 0 (or -1 with max_steps)")
    need("trainer.max_steps", lambda v: is_int(v) and (v > 0 or v == -1), "an integer > 0 or -1 (no limit)")
    need("trainer.num_nodes", lambda v: is_int(v) and v >= 1, "an integer >= 1")
    need("trainer.gradient_clip_val", lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0 or null")
    need("trainer.accumulate_grad_batches", lambda v: is_int(v) and v >= 1, "an integer >= 1")
    need("trainer.check_val_every_n_epoch", lambda v: is_int(v) and v >= 1, "an integer >= 1 or null")
    need("trainer.log_every_n_steps", lambda v: is_int(v) and v >= 1, "an integer >= 1")
    for split in ("train", "val", "test"):
        need(f"trainer.limit_{split}_batches", lambda v: isinstance(v, (int, float)) and v > 0,
             "a number > 0 (int: batches, float: fraction)")
    need("model.optimizer.lr", lambda v: isinstance(v, (int, float)) and v > 0, "a learning rate > 0")
    need("model.optimizer.weight_decay", lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0")
    need("seed", is_int, "an integer")
    need("checkpoint_every_n_steps", lambda v: is_int(v) and v >= 1, "an integer >= 1 or null (every epoch only)")
    if _num(cfg, "trainer.max_epochs") == -1 and _num(cfg, "trainer.max_steps") in (None, -1):
        raise ValueError("config keys trainer.max_epochs=-1 and trainer.max_steps=-1: training would never end; "
                         "set trainer.max_epochs > 0 or trainer.max_steps > 0")


# ---- building blocks ----------------------------------------------------------------------------------
def model_class(model_cfg: DictConfig) -> type:
    target = model_cfg.get("_target_")
    if not target:
        raise ValueError("config group model: the selected config has no _target_")
    return get_class(target)


def fill_from_info(model_cfg: DictConfig, info: DataInfo) -> DictConfig:
    """Copy of ``model_cfg`` whose null DataInfo-field keys take the datamodule's values."""
    filled = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=False))
    with open_dict(filled):
        for key in DATAINFO_FIELDS:
            if key in filled and filled[key] is None:
                val = getattr(info, key)
                filled[key] = list(val) if isinstance(val, tuple) else val
    return filled


def check_task(cls: type, info: DataInfo, where: str = "model") -> None:
    task = getattr(cls, "task", None)
    if task is None:
        raise ValueError(f"{where}: class {cls.__module__}.{cls.__qualname__} has no 'task' attribute "
                         f"(expected one of 'landmarks', 'identities')")
    if task != info.task:
        raise ValueError(f"{where} {cls.__qualname__} is a {task!r} model but the datamodule yields {info.task!r} "
                         f"samples; pick a matching pair (e.g. model=landmark_validation with a landmark data= "
                         f"config, or a recognition model with identity data: model=arcface, model=cosface or "
                         f"model=facenet_triplet alone select data=synthetic_3dmm_identities sampler=pk)")


def check_input_format(model: Any, dm: Any, trained_data: Any, data_cfg: Any) -> None:
    """evaluate.py with a ``data=`` config (recognition models): the images must reach the model as in training:
    same size, channels and normalisation (mean/std), else a ValueError naming the ``data.*`` key and the value
    training used."""
    from zoo.models.inference import data_normalisation

    info = dm.info
    for key in ("image_size", "channels"):
        want, got = getattr(model, key, None), getattr(info, key, None)
        if want is not None and got is not None and int(want) != int(got):
            raise ValueError(f"config key data.{key}={got!r} is invalid: the model of ckpt_path was trained on "
                             f"{key} {want}; expected data.{key}={want}")
    trained, given = data_normalisation(trained_data), data_normalisation(data_cfg)
    for key in ("mean", "std"):
        if key in trained and key in given:
            a, b = (torch.as_tensor(v, dtype=torch.float64).flatten() for v in (trained[key], given[key]))
            try:
                same = torch.allclose(*torch.broadcast_tensors(a, b))  # 0.5 equals [0.5, 0.5, 0.5]
            except RuntimeError:
                same = False
            if not same:
                raise ValueError(f"config key data.{key}={given[key]!r} is invalid: the model of ckpt_path was trained "
                                 f"on images normalised with {key} {trained[key]!r}; expected data.{key}="
                                 f"{trained[key]!r} (image = (x - mean) / std, x in [0, 1])")


MONITORING_CALLBACKS = ("ModelCheckpoint", "EarlyStopping")


def build_callbacks(cb_cfg: DictConfig | None, default_monitor: tuple[str, str] | None = None) -> list[L.Callback]:
    """Instantiate ``cfg.callbacks``. A ModelCheckpoint / EarlyStopping whose ``monitor`` is null watches the
    model's ``default_monitor`` (metric, mode): ``val/nme`` for landmark models, ``val/eer`` for recognition
    models, so one callbacks config serves every task."""
    out: list[L.Callback] = []
    for name, node in (cb_cfg or {}).items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ValueError(f"config callbacks.{name} must be a node with _target_, got {node!r}")
        kw: dict[str, Any] = {}
        if (str(node._target_).rsplit(".", 1)[-1] in MONITORING_CALLBACKS and "monitor" in node
                and node.monitor is None and default_monitor is not None):
            kw = {"monitor": default_monitor[0], "mode": default_monitor[1]}
        out.append(instantiate(node, **kw))
    return out


class RunRecord(L.Callback):
    """Puts the resolved run config, the model class path and the W&B id into every checkpoint, and
    writes ``config.yaml`` next to the checkpoints (what evaluate.py and the inference API read)."""

    def __init__(self, config: dict[str, Any], wandb_id: str | None = None, ckpt_dir: str | None = None) -> None:
        self.config, self.wandb_id, self.ckpt_dir = config, wandb_id, ckpt_dir

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ckpt_dir and trainer.is_global_zero:
            Path(self.ckpt_dir).mkdir(parents=True, exist_ok=True)
            OmegaConf.save(OmegaConf.create(self.config), Path(self.ckpt_dir) / "config.yaml")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        from lightning.fabric.utilities.seed import _collect_rng_states

        zoo_checkpoint.record(checkpoint, self.config, type(pl_module), self.wandb_id)
        # exact resume: the RNG streams (augmentation in the main process, dropout) as they are after this step,
        # and whether the epoch's batches are all done (then the next epoch's loader draws its seed first)
        checkpoint[zoo_checkpoint.KEY]["rng"] = _collect_rng_states(include_cuda=False)
        checkpoint[zoo_checkpoint.KEY]["epoch_done"] = bool(trainer.fit_loop.epoch_loop.done)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        entry = checkpoint.get(zoo_checkpoint.KEY) or {}
        self._resume_rng = (entry.get("rng"), bool(entry.get("epoch_done")))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the RNG streams back where the checkpoint left them, after Lightning created the resumed epoch's
        loader iterator (which draws from the global torch RNG) and before the first batch is fetched."""
        from lightning.fabric.utilities.seed import _set_rng_states

        rng, epoch_done = getattr(self, "_resume_rng", (None, False))
        self._resume_rng = (None, False)
        if rng:
            _set_rng_states(rng)
            if epoch_done:  # the uninterrupted run creates the next epoch's iterator after this point: one draw
                torch.empty((), dtype=torch.int64).random_()


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]


def build_logger(cfg: DictConfig) -> Any:
    node = cfg.get("logger")
    if node is None:
        return False
    if "_target_" not in node:  # a dict of loggers
        return [instantiate(n) for n in node.values() if n is not None]
    return instantiate(node)


def _wandb_id(logger: Any) -> str | None:
    from lightning.pytorch.loggers import WandbLogger

    for lg in logger if isinstance(logger, list) else [logger]:
        if isinstance(lg, WandbLogger):
            return lg.experiment.id if lg._experiment is not None else lg._wandb_init.get("id")
    return None


def _ckpt_dir(callbacks: list[L.Callback]) -> str | None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.dirpath:
            return str(cb.dirpath)
    return None


PEER_FAILURE_SIGNS = ("connection closed by peer", "connection reset by peer", "broken pipe", "timed out",
                      "timeout", "connection refused", "nccl communicator was aborted", "socket")


def is_peer_failure(e: BaseException) -> bool:
    """True when ``e`` (or its cause) is what a collective raises after another rank died."""
    while e is not None:
        if isinstance(e, (RuntimeError, ConnectionError, OSError)) and any(
                s in str(e).lower() for s in PEER_FAILURE_SIGNS):
            return True
        e = e.__cause__ or e.__context__
    return False


def resume_in_run_folder(cfg: DictConfig) -> None:
    """``ckpt_path=<run>/checkpoints/<file>``: continue in ``<run>`` (``paths.output_dir``), so that checkpoints,
    logs and the W&B run stay in one folder and ModelCheckpoint restores its ``best_model_score`` (Lightning
    restores it only for the same ``dirpath``). ``resume_in_place=false`` keeps the new run folder."""
    ckpt = cfg.get("ckpt_path")
    if not ckpt or not cfg.get("resume_in_place", True):
        return
    p = Path(str(ckpt)).resolve()
    if p.parent.name == "checkpoints" and OmegaConf.select(cfg, "paths.output_dir", default=None) is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(p.parent.parent)
        print(f"[zoo] resuming in the run folder {p.parent.parent}")


# ---- entry points ----------------------------------------------------------------------------------------
def train(cfg: DictConfig) -> dict[str, Any]:
    """compose -> instantiate -> ``trainer.fit`` (+ ``trainer.test`` on the best checkpoint when cfg.test)."""
    if cfg.get("finetune"):
        raise ValueError("config key finetune is set: the priming workflow runs it (zoo.workflows.priming.run, "
                         "what train.py calls for such configs); zoo.run.train runs one plain training")
    validate_config(cfg)
    resume_in_run_folder(cfg)
    L.seed_everything(int(cfg.get("seed", 0)), workers=True)
    torch.set_float32_matmul_precision(cfg.get("matmul_precision", "high"))

    dm = instantiate(cfg.data)
    info = dm.info
    cls = model_class(cfg.model)
    check_task(cls, info)
    model_cfg = fill_from_info(cfg.model, info)
    with open_dict(cfg):
        cfg.model = model_cfg
    model = instantiate(cfg.model)
    if cfg.get("ckpt_path"):  # resume: a readable checkpoint of this model class, checked before any work
        zoo_checkpoint.check_model_class(zoo_checkpoint.read(cfg.ckpt_path), model, cfg.ckpt_path)

    callbacks = build_callbacks(cfg.get("callbacks"), getattr(model, "default_monitor", None))
    logger = build_logger(cfg)
    if not logger:  # LearningRateMonitor refuses to run without a logger
        from lightning.pytorch.callbacks import LearningRateMonitor

        dropped = [cb for cb in callbacks if isinstance(cb, LearningRateMonitor)]
        if dropped:
            print("[zoo] logger=null: LearningRateMonitor left out (it needs a logger)")
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    record = RunRecord(_resolved(cfg), _wandb_id(logger), _ckpt_dir(callbacks))
    extra: dict[str, Any] = {}
    if not model.automatic_optimization and _num(cfg, "trainer.gradient_clip_val"):
        # Lightning refuses trainer-side clipping with manual optimisation: such models clip their own gradients
        print(f"[zoo] {cls.__qualname__} optimises manually: trainer.gradient_clip_val ignored (the model clips "
              f"its own gradients, see its config)")
        extra["gradient_clip_val"] = None
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks + [record], logger=logger,
                                     use_distributed_sampler=False, plugins=[zoo_checkpoint.atomic_checkpoint_io()],
                                     **extra)
    if logger:
        for lg in logger if isinstance(logger, list) else [logger]:
            lg.log_hyperparams({"config": record.config})
    try:  # zoo checkpoints hold sampler state (numpy): weights_only=False
        trainer.fit(model, datamodule=dm, ckpt_path=cfg.get("ckpt_path"), weights_only=False)
    except Exception as e:
        if trainer.world_size > 1 and is_peer_failure(e):
            raise RuntimeError(
                f"[zoo] rank {trainer.global_rank} of {trainer.world_size}: another process of this distributed run "
                f"stopped (killed or crashed) -- {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}. "
                f"This rank stops too. Resume every rank with ckpt_path=<run>/checkpoints/last.ckpt") from e
        raise

    ckpt_cb = trainer.checkpoint_callback
    best = getattr(ckpt_cb, "best_model_path", "") or ""
    test_metrics: dict[str, float] = {}
    if cfg.get("test", True) and not trainer.interrupted:
        ckpt = "best" if best else None
        res = trainer.test(model, datamodule=dm, ckpt_path=ckpt, weights_only=False)
        test_metrics = res[0] if res else {}
    if trainer.is_global_zero:
        last = getattr(ckpt_cb, "last_model_path", "") or ""
        print(f"[zoo] best checkpoint: {best or '(none saved)'}")
        if last and Path(last).is_file():
            print(f"[zoo] last checkpoint: {last}  (resume: python train.py ckpt_path={last})")
        if record.wandb_id:
            mode = os.environ.get("WANDB_MODE", "online")
            mode = "offline" if mode in ("offline", "dryrun") else mode
            print(f"[zoo] W&B run {record.wandb_id} ({mode}) under "
                  f"{cfg.logger.get('save_dir')}/wandb")
    finish_loggers(logger)
    return {"trainer": trainer, "model": model, "datamodule": dm, "best_model_path": best,
            "test_metrics": test_metrics, "val_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()
                                                          if k.startswith("val/")}}


def finish_loggers(logger: Any) -> None:
    """Close W&B runs so the next run in this process (tests, notebooks) starts its own."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in logger if isinstance(logger, list) else ([logger] if logger else []):
        if isinstance(lg, WandbLogger) and lg._experiment is not None:
            lg.experiment.finish()


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test a checkpoint and write its report (metrics.json + PNGs), logging both to the configured logger."""
    if not cfg.get("ckpt_path"):
        raise ValueError("evaluate.py needs ckpt_path=<path to a .ckpt written by train.py>")
    boxes = check_choice("boxes", cfg.get("boxes") or "landmarks", ("landmarks", "detector"))
    detector = None
    if boxes == "detector":  # the detector is built (and its name checked) before any work
        from zoo.detection import load_face_detector

        options = OmegaConf.to_container(cfg.detector_options, resolve=True) if cfg.get("detector_options") else {}
        detector = load_face_detector(cfg.get("detector") or "dlib", **options)
    cls, saved, ckpt = load_run_checkpoint(cfg.ckpt_path)
    if cfg.get("data") is not None:
        dm = instantiate(data_for_checkpoint(cfg.data, saved.get("data") or {}))
        if callable(getattr(dm, "prepare_evaluation", None)):  # e.g. an identity folder: all identities are test
            dm.prepare_evaluation()
    elif saved.get("data"):
        data_cfg = dict(saved["data"])
        data_cfg.pop("sampler", None)  # training-only
        dm = instantiate(data_cfg)
    else:
        raise ValueError(f"{cfg.ckpt_path}: the checkpoint stores no data config; pass data=<name>")
    check_task(cls, dm.info, where=f"ckpt_path={cfg.ckpt_path}: model")
    hparams = ckpt.get("hyper_parameters") or {}
    if cls.task == "landmarks":
        check_data_matches_model(hparams, dm.info, cfg.ckpt_path)
    # per-subset metrics under the evaluated data's subset names (a test folder has its own)
    extra = {"subset_names": dm.info.subset_names} if "subset_names" in hparams else {}
    model = cls.load_from_checkpoint(cfg.ckpt_path, map_location="cpu", weights_only=False, **extra)
    if cfg.get("data") is not None and getattr(model, "task", None) == "identities":
        check_input_format(model, dm, saved.get("data"), cfg.data)
    out_dir = Path(cfg.get("out_dir") or Path(cfg.ckpt_path).resolve().parent.parent / "eval")
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = build_logger(cfg)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=logger, use_distributed_sampler=False)
    trainer.test(model, datamodule=dm)
    report = model.write_report(str(out_dir)) if trainer.is_global_zero else {}
    if boxes == "detector" and trainer.is_global_zero:  # NME with detector boxes beside landmark boxes, faces missed
        from zoo.models.photo_runs import detector_report

        report.update(detector_report(cfg.ckpt_path, dm, out_dir, detector, cfg.get("box_mapping"),
                                      int(cfg.get("refine", 1))))
    if trainer.is_global_zero:
        _log_report(logger, report, out_dir)
        print(f"[zoo] metrics: {out_dir / 'metrics.json'}")
        print(json.dumps(_jsonable(report), indent=1)[:2000])
    finish_loggers(logger)
    return {"trainer": trainer, "model": model, "datamodule": dm, "report": report, "out_dir": str(out_dir)}


def data_for_checkpoint(data_cfg: DictConfig, saved_data: dict[str, Any]) -> DictConfig:
    """An evaluation ``data_cfg`` (changed in place, so its interpolations still resolve against the run config)
    whose null keys among its datamodule class's ``checkpoint_keys`` (crop geometry, normalisation, scheme: e.g.
    ``LandmarkDataModule.checkpoint_keys``) take the values of the checkpoint's own data config ``saved_data``;
    keys still null are dropped (the class defaults apply)."""
    keys = getattr(get_class(data_cfg._target_), "checkpoint_keys", ()) if data_cfg.get("_target_") else ()
    out = data_cfg
    with open_dict(out):
        for key in keys:
            if key in out and out[key] is None:
                if saved_data.get(key) is not None:
                    out[key] = saved_data[key]
                else:
                    del out[key]
    return out


#: DataInfo fields a landmark model's input and output are built for -> the data config key that sets them
MODEL_DATA_KEYS = {"image_size": "data.image_size", "channels": "data.grayscale", "num_landmarks": "data.scheme"}


def check_data_matches_model(hparams: dict[str, Any], info: DataInfo, ckpt_path: Any) -> None:
    """ValueError naming the data key when the evaluation data gives another crop size, channel count or
    landmark count than the checkpoint's model was built for."""
    for field, key in MODEL_DATA_KEYS.items():
        want, got = hparams.get(field), getattr(info, field, None)
        if want is not None and got is not None and want != got:
            if field == "channels":
                fix = f"data.grayscale={str(want == 1).lower()}"
            elif field == "num_landmarks":
                fix = f"data.scheme=<a {want}-point scheme> (the checkpoint's: {hparams.get('scheme')})"
            else:
                fix = f"{key}={want}"
            raise ValueError(f"{key}: the data gives {field}={got} but the model in ckpt_path={ckpt_path} was "
                             f"trained with {field}={want}; expected {fix}, or leave {key} null in an evaluation "
                             f"data config (data=pts_folder ...) to take the checkpoint's")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


def _log_report(logger: Any, report: dict[str, Any], out_dir: Path) -> None:
    """Log scalar metrics, the JSON file and every PNG under ``out_dir`` to W&B (other loggers: scalars)."""
    from lightning.pytorch.loggers import WandbLogger

    scalars = {f"eval/{k}": v for k, v in flatten_metrics(report).items()}
    for lg in logger if isinstance(logger, list) else ([logger] if logger else []):
        if isinstance(lg, WandbLogger):
            import wandb

            payload: dict[str, Any] = dict(scalars)
            for png in sorted(out_dir.glob("*.png")):
                payload[f"eval/{png.stem}"] = wandb.Image(str(png))
            lg.experiment.log(payload)
            if (out_dir / "metrics.json").is_file():
                lg.experiment.save(str(out_dir / "metrics.json"), base_path=str(out_dir), policy="now")
        else:
            lg.log_metrics(scalars)
            lg.save()
