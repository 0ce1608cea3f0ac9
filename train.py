"""Train a zoo model: ``python train.py [group=option ...] [key=value ...]``.

Examples::

    python train.py                                   # landmark model with validation head on 3DMM-synthetic data
    python train.py model=landmark_validation sampler=lpbb
    python train.py experiment=fuhl_bb data=afw_helen trainer.max_epochs=60
    python train.py trainer=ddp trainer.devices=4     # DDP, no code change
    python train.py ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt   # resume (same W&B run)

All logic lives in :func:`zoo.run.train` (and :func:`zoo.workflows.priming.run` for ``finetune`` configs); configs in ``configs/`` (``--help`` lists the groups).
"""
import hydra
from omegaconf import DictConfig

from zoo.run import train
from zoo.workflows.priming import run as prime


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """One training run, or the priming workflow (pretrain, then fine-tune) when ``finetune`` is set."""
    (prime if cfg.get("finetune") else train)(cfg)


if __name__ == "__main__":
    main()
