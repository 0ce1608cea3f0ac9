"""Bad-input suite, checkpoints (issue 13): missing, truncated, text, empty and foreign files, checkpoints of
another model, unimportable classes -- each error names the file (and the key the user typed) and says what was
expected. Checkpoints are written the way train.py writes them (state_dict + hyper_parameters + the zoo entry)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bad_input.naming import raises_naming
from zoo import checkpoint as ckpt_format
from zoo.models.landmark import LandmarkRegressor
from zoo.models.recognition import EmbeddingModel, FaceNetTriplet


def landmark_model():
    return LandmarkRegressor(num_landmarks=5, image_size=32, channels=1, head_hidden=8, channels_last=False)


def recognition_model():
    return FaceNetTriplet(backbone="resnet10t", channels=1, image_size=32, embedding_dim=8)


def save(model, path: Path, zoo_entry: bool = True) -> Path:
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    if zoo_entry:
        ckpt_format.record(ckpt, {"model": {"_target_": ckpt_format.class_path(type(model))}}, type(model))
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def landmark_ckpt(tmp_path_factory):
    return save(landmark_model(), tmp_path_factory.mktemp("ck") / "landmark.ckpt")


@pytest.fixture(scope="module")
def recognition_ckpt(tmp_path_factory):
    return save(recognition_model(), tmp_path_factory.mktemp("ck") / "facenet.ckpt")


@pytest.fixture
def truncated(tmp_path, landmark_ckpt):
    data = landmark_ckpt.read_bytes()
    p = tmp_path / "last.ckpt"
    p.write_bytes(data[: len(data) // 2])  # a copy interrupted half-way
    return p


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "notes.ckpt"
    p.write_text("this is not a checkpoint\n")
    return p


# ---- reading the file -------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    raises_naming(lambda: ckpt_format.read(tmp_path / "nope.ckpt"), "ckpt_path", str(tmp_path / "nope.ckpt"),
                  "does not exist", error=FileNotFoundError)


def test_truncated_checkpoint_names_the_file(truncated):
    raises_naming(lambda: ckpt_format.read(truncated), "ckpt_path", str(truncated), "bytes", "truncated",
                  "expected a .ckpt file written by train.py")


def test_text_file_as_checkpoint(text_file):
    raises_naming(lambda: ckpt_format.read(text_file), "ckpt_path", str(text_file), "could not be read")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.ckpt"
    p.write_bytes(b"")
    raises_naming(lambda: ckpt_format.read(p), str(p), "0 bytes")


def test_tensor_file_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "weights.pt"
    torch.save(torch.zeros(3), p)
    raises_naming(lambda: ckpt_format.read(p), str(p), "holds a Tensor", "not a checkpoint dict")


def test_key_name_is_passed_on(truncated):
    raises_naming(lambda: ckpt_format.read(truncated, "model.init_from"), "model.init_from", str(truncated))


# ---- what the checkpoint holds ------------------------------------------------------------------------------
def test_lightning_checkpoint_without_zoo_entry(tmp_path):
    p = save(landmark_model(), tmp_path / "plain.ckpt", zoo_entry=False)
    raises_naming(lambda: ckpt_format.load_run_checkpoint(p), str(p), "not a zoo checkpoint", "train.py")


def test_recorded_class_that_cannot_be_imported(tmp_path):
    p = tmp_path / "gone.ckpt"
    torch.save({"state_dict": {}, "zoo": {"model_class": "zoo.models.gone.Vanished", "config": {}}}, p)
    raises_naming(lambda: ckpt_format.load_run_checkpoint(p), str(p), "zoo.models.gone.Vanished", "cannot be imported")


def test_checkpoint_of_another_model_names_both_classes(landmark_ckpt):
    msg = raises_naming(lambda: ckpt_format.load_run_checkpoint(landmark_ckpt, expected=EmbeddingModel),
                        str(landmark_ckpt), "zoo.models.landmark.LandmarkRegressor",
                        "zoo.models.recognition.EmbeddingModel")
    assert len(msg) < 400  # a short message, not a list of state-dict keys


def test_resume_with_checkpoint_of_another_model(landmark_ckpt):
    """What train.py ckpt_path=<landmark ckpt> model=facenet_triplet checks before Lightning's restore."""
    ck = ckpt_format.read(landmark_ckpt)
    msg = raises_naming(lambda: ckpt_format.check_model_class(ck, recognition_model(), landmark_ckpt),
                        "ckpt_path", str(landmark_ckpt), "zoo.models.landmark.LandmarkRegressor",
                        "zoo.models.recognition.FaceNetTriplet")
    assert len(msg) < 400


def test_resume_with_the_same_model_passes(landmark_ckpt):
    ckpt_format.check_model_class(ckpt_format.read(landmark_ckpt), landmark_model(), landmark_ckpt)


# ---- through the users of the format ---------------------------------------------------------------------------
def test_evaluate_with_truncated_checkpoint(truncated, tmp_path):
    from omegaconf import OmegaConf

    from zoo.run import evaluate

    cfg = OmegaConf.create({"ckpt_path": str(truncated), "data": None, "out_dir": str(tmp_path / "eval")})
    raises_naming(lambda: evaluate(cfg), "ckpt_path", str(truncated), "truncated")


def test_export_with_text_file(text_file, tmp_path):
    from zoo.export import export_checkpoint

    raises_naming(lambda: export_checkpoint(text_file, "torchscript", tmp_path / "x.pt"), str(text_file),
                  "could not be read")


def test_export_of_a_landmark_checkpoint(landmark_ckpt, tmp_path):
    from zoo.export import export_checkpoint

    raises_naming(lambda: export_checkpoint(landmark_ckpt, "torchscript", tmp_path / "x.pt"), "LandmarkRegressor",
                  "only recognition models can be exported")


def test_landmark_predictor_from_recognition_checkpoint(recognition_ckpt):
    from zoo.models.inference import LandmarkPredictor

    raises_naming(lambda: LandmarkPredictor.from_checkpoint(recognition_ckpt), str(recognition_ckpt),
                  "FaceNetTriplet", "not a landmark model")


def test_init_from_truncated_checkpoint(truncated):
    raises_naming(lambda: recognition_model().load_pretrained(truncated), "model.init_from", str(truncated))


def test_init_from_landmark_checkpoint(landmark_ckpt):
    raises_naming(lambda: recognition_model().load_pretrained(landmark_ckpt), "model.init_from", str(landmark_ckpt),
                  "no 'embedder.*' weights")


def test_wandb_id_of_truncated_checkpoint(truncated):
    from zoo.loggers import wandb_id_from_checkpoint

    raises_naming(lambda: wandb_id_from_checkpoint(truncated), str(truncated), "truncated")
