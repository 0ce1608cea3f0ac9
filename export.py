"""Export a trained recognition embedder: ``python export.py ckpt_path=<.ckpt> format=onnx|torchscript [out=...]``.

The file maps ``image [N, C, H, W]`` (normalised like the training data) to unit-norm embeddings ``[N, D]``;
compare faces by the dot product. With ``verify=true`` (default) the exported file is run on a random batch and
must match PyTorch within ``atol``. All logic lives in :mod:`zoo.export`.
"""
import json

import hydra
from omegaconf import DictConfig

from zoo.export import export_checkpoint


@hydra.main(config_path="configs", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    info = export_checkpoint(cfg.ckpt_path, cfg.format, cfg.out, opset=int(cfg.opset), verify=bool(cfg.verify),
                             atol=float(cfg.atol))
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
