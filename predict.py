"""Landmarks on whole photos: ``python predict.py image=photo.jpg [ckpt_path=<ckpt>] [detector=dlib|dlib_cnn|opencv] [out_dir=...]``.

Finds the faces with a detector whose weights ship in an installed wheel, maps each box to the crop the model was
trained on (a box-to-crop map learnt on the run's training faces, stored beside the checkpoint), and writes
``landmarks.json`` (landmarks + per-landmark validation values per face; a photo without a face is listed with
``faces: []`` and a warning) and ``<photo>_landmarks.png`` overlays to ``out_dir`` (default: the Hydra run folder).
All logic lives in :mod:`zoo.models.photo_runs` and :mod:`zoo.models.photos`.
"""
import hydra
from omegaconf import DictConfig

from zoo.models.photo_runs import run_predict


@hydra.main(config_path="configs", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_predict(cfg)


if __name__ == "__main__":
    main()
