"""Priming: pretrain a model on one datamodule, then fine-tune it on another (recognition or landmarks).

Kortylewski et al. (seed 000, Sec. 4.3; seed 001, Sec. IV-C) pretrain FaceNet on 3DMM-synthetic faces ("SYN")
and fine-tune the primed network on 10/25/50/100 % of the real training data, which beats training on the
real data alone; seed 000's Table 2 does the same for facial landmarks (``experiment=kortylewski_landmarks``:
the landmark model on ``data=synthetic_3dmm_frontal``, fine-tuned on a fraction of ``afw_helen``). :func:`run` does both stages with :func:`zoo.run.train`, from one composed config (train.py
calls :func:`run` instead of :func:`zoo.run.train` when ``finetune`` is set):

``cfg.data``/``cfg.model``/``cfg.trainer``...  the pretraining stage (``cfg.pretrain``: optional overrides merged
                                                into it, e.g. ``{trainer: {max_epochs: 20}}``);
``cfg.finetune.data``                           the fine-tuning data config (a ``data`` group option, placed here
                                                with ``data@finetune.data=<name>``);
``cfg.finetune.fraction``                       fraction of its training images (``data.train_fraction``, 1.0 = all);
``cfg.finetune.reinit_centres``                 start the class centres afresh (ArcFace; default true: the
                                                identities change). The embedder (backbone + head) is kept;
``cfg.finetune.trainer`` / ``cfg.finetune.model``  overrides for the fine-tuning stage (epochs, lr, ...);
``cfg.finetune.init_from``                      skip pretraining and fine-tune from this checkpoint (one synthetic
                                                pretraining, several fine-tuning fractions, as in the papers);
``cfg.finetune.init``                           ``"best"`` (default: the best checkpoint of the pretraining stage when
                                                one was saved) or ``"last"`` (the final weights).

Stage outputs go to ``<paths.output_dir>/pretrain`` and ``<paths.output_dir>/finetune``. The fine-tuning stage
sets ``model.init_from`` (weights only: fresh optimiser and epoch count; both model families accept it:
:class:`~zoo.models.recognition` models load the embedder, :class:`~zoo.models.landmark.LandmarkRegressor` every
weight and its mean-shape anchor), so it needs no other hook in train.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.run import train

FINETUNE_KEYS = ("data", "fraction", "reinit_centres", "trainer", "model", "init_from", "init")


def _check(cfg: DictConfig) -> DictConfig:
    ft = cfg.finetune
    if not isinstance(ft, DictConfig):
        raise ValueError(f"config key finetune must be a mapping with keys {list(FINETUNE_KEYS)}, got {ft!r}")
    unknown = sorted(set(ft.keys()) - set(FINETUNE_KEYS))
    if unknown:
        raise ValueError(f"config key finetune has unknown keys {unknown}; expected some of {list(FINETUNE_KEYS)}")
    if ft.get("data") is None or "_target_" not in ft.data:
        raise ValueError("config key finetune.data must be a data config with _target_ (select one with "
                         "data@finetune.data=<name>, e.g. data@finetune.data=ytf_identities)")
    frac = ft.get("fraction", 1.0)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
        raise ValueError(f"config key finetune.fraction must be a number in (0, 1], got {frac!r}")
    if ft.get("init", "best") not in ("best", "last"):
        raise ValueError(f"config key finetune.init must be 'best' or 'last', got {ft.get('init')!r}")
    if cfg.get("ckpt_path") and not ft.get("init_from"):
        raise ValueError("config key ckpt_path resumes the fine-tuning stage of a priming run; set "
                         "finetune.init_from=<pretrained checkpoint> too (pretraining is then skipped)")
    return ft


def _stage(cfg: DictConfig, out_dir: Path, overrides: Any = None) -> DictConfig:
    """A plain training config: ``cfg`` without the priming keys, writing under ``out_dir``, with ``overrides``."""
    stage = copy.deepcopy(cfg)
    with open_dict(stage):
        stage.finetune = None
        stage.pop("pretrain", None)
        stage.paths.output_dir = str(out_dir)
    if overrides:
        stage = OmegaConf.merge(stage, overrides)
    return stage


def _pretrained_checkpoint(result: dict[str, Any], out_dir: Path, init: str) -> str:
    best = result.get("best_model_path") or ""
    if init == "best" and best:
        return best
    path = out_dir / "checkpoints" / "pretrained_final.ckpt"
    result["trainer"].save_checkpoint(str(path))
    return str(path)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Pretrain on ``cfg.data``, fine-tune on ``cfg.finetune.data``; returns the fine-tuning stage's
    :func:`zoo.run.train` result plus ``pretrain`` (the first stage's result, None when skipped) and
    ``pretrained_checkpoint``."""
    ft = _check(cfg)
    out = Path(str(OmegaConf.select(cfg, "paths.output_dir", default=None) or "outputs/priming"))
    # both stage configs are copied before anything runs: train() fills the model's data-dependent keys in place
    pre_cfg = _stage(cfg, out / "pretrain", cfg.get("pretrain"))
    ft_cfg = _stage(cfg, out / "finetune", {"trainer": ft.get("trainer") or {}, "model": ft.get("model") or {}})
    with open_dict(ft_cfg):
        ft_cfg.data = copy.deepcopy(ft.data)
        frac = float(ft.get("fraction", 1.0))
        if frac != 1.0 or "train_fraction" in ft_cfg.data:
            if "train_fraction" not in ft_cfg.data:
                raise ValueError(f"finetune.fraction={frac} needs a data config with a train_fraction key; "
                                 f"{ft_cfg.data._target_} has none")
            ft_cfg.data.train_fraction = frac

    pre_result = None
    init_from = ft.get("init_from")
    if init_from:
        if not Path(str(init_from)).is_file():
            raise FileNotFoundError(f"config key finetune.init_from: checkpoint {init_from} does not exist")
    else:
        with open_dict(pre_cfg):
            pre_cfg.ckpt_path = None  # ckpt_path (resume) belongs to the fine-tuning stage
        pre_result = train(pre_cfg)
        if pre_result["trainer"].interrupted:
            raise RuntimeError("priming: the pretraining stage was interrupted; not fine-tuning")
        init_from = _pretrained_checkpoint(pre_result, out / "pretrain", ft.get("init", "best"))

    with open_dict(ft_cfg):
        ft_cfg.model.init_from = str(init_from)
        if "reinit_centres" in ft_cfg.model:
            ft_cfg.model.reinit_centres = bool(ft.get("reinit_centres", True))
    print(f"[zoo] priming: fine-tuning {ft_cfg.model._target_} on {ft_cfg.data._target_} "
          f"(fraction {frac}) from {init_from}")
    result = train(ft_cfg)
    return {**result, "pretrain": pre_result, "pretrained_checkpoint": str(init_from)}
