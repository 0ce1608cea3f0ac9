"""Evaluate a checkpoint: ``python evaluate.py ckpt_path=<run>/checkpoints/best-....ckpt [data=...] [out_dir=...]``.

Runs ``trainer.test`` on the data saved with the run (or ``data=<name>``), writes ``metrics.json`` and PNG
plots to ``out_dir`` (default ``<run>/eval``) and logs them to W&B (offline unless configured).
All logic lives in :func:`zoo.run.evaluate`.
"""
import hydra
from omegaconf import DictConfig

from zoo.run import evaluate


@hydra.main(config_path="configs", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
