"""Every option of every config group composes the way train.py composes it (Hydra compose API), one test per
(group, option), and the composed node carries the option file's own values (read independently with
OmegaConf.load)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
#: groups that train.py selects (the package each lands in); task_callbacks comes with the model config
GROUPS = {"data": "data", "model": "model", "sampler": "sampler", "augment": "augment", "trainer": "trainer",
          "logger": "logger", "callbacks": "callbacks", "experiment": None, "task_callbacks": "callbacks"}
CASES = [(g, p.stem) for g in GROUPS for p in sorted((CONFIGS / g).glob("*.yaml"))]
#: nested groups inside model/ (selected as model/optimizer=<name>)
CASES += [(f"model/{g}", p.stem) for g in ("optimizer", "scheduler") for p in sorted((CONFIGS / "model" / g).glob("*.yaml"))]


def own_leaves(path: Path) -> dict[str, object]:
    """Literal (non-interpolated, non-null) leaf values of one option file, keyed by dotted path."""
    node = OmegaConf.load(path)
    out: dict[str, object] = {}

    def walk(n, prefix):
        for k in n.keys():
            if k == "defaults" or k == "hydra":
                continue
            key = f"{prefix}{k}"
            if OmegaConf.is_interpolation(n, k) or OmegaConf.is_missing(n, k):
                continue
            v = n[k]
            if OmegaConf.is_dict(v):
                walk(v, key + ".")
            elif OmegaConf.is_list(v):
                if not any(OmegaConf.is_interpolation(v, i) for i in range(len(v))):
                    out[key] = OmegaConf.to_container(v)
            elif v is not None:
                out[key] = v

    walk(node, "")
    return out


@pytest.mark.parametrize("group,option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes(group, option, tmp_path):
    overrides = [f"paths.output_dir={tmp_path}"]
    if group == "task_callbacks":
        overrides.append(f"task_callbacks@callbacks={option}")  # the model config selects it
    else:
        overrides.append(f"{group}={option}")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    if group == "experiment":
        node = cfg
        leaves = {}  # experiments override other groups' values; compared where they set literals below
        exp = OmegaConf.load(CONFIGS / "experiment" / f"{option}.yaml")
        for key, value in own_leaves(CONFIGS / "experiment" / f"{option}.yaml").items():
            got = OmegaConf.select(cfg, key)
            got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
            assert got == value, (key, value)
        assert exp is not None
        return
    package = GROUPS.get(group, "model")
    if group.startswith("model/"):
        package = f"model.{group.split('/')[1]}"
    node = OmegaConf.select(cfg, package)
    leaves = own_leaves(CONFIGS / group / f"{option}.yaml")
    for key, value in leaves.items():
        if group == "model" and key.split(".")[0] in ("optimizer", "scheduler"):
            continue  # merged with the optimizer/scheduler option, checked there
        got = OmegaConf.select(node, key)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        assert got == value, (f"{package}.{key}", value)
    OmegaConf.to_container(cfg, resolve=False)  # whole config is well formed


def test_default_config_equals_its_option_files(tmp_path):
    """``python train.py`` with no overrides: each group node holds the values of the option train.yaml names."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONFIGS / "train.yaml").defaults)
    choices = {k: v for d in defaults if isinstance(d, dict) for k, v in d.items()}
    assert choices["model"] == "landmark_validation" and choices["data"] == "synthetic_3dmm"
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}"])
    top = OmegaConf.load(CONFIGS / "train.yaml")
    for key in ("seed", "test", "ckpt_path", "finetune", "task_name"):
        assert cfg[key] == top[key]
    for group, option in choices.items():
        if option is None:
            continue
        for key, value in own_leaves(CONFIGS / group / f"{option}.yaml").items():
            if group == "model" and key.split(".")[0] in ("optimizer", "scheduler"):
                continue
            got = OmegaConf.select(cfg[group], key)
            got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
            assert got == value, (f"{group}.{key}", value)
    # callbacks: the shared ones plus the landmark task's, nothing else
    want = set(OmegaConf.load(CONFIGS / "callbacks" / "default.yaml")) | \
        set(OmegaConf.load(CONFIGS / "task_callbacks" / "landmarks.yaml"))
    assert set(cfg.callbacks) == want


def test_recognition_models_do_not_get_landmark_callbacks(tmp_path):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}", "model=arcface"])
    assert set(cfg.callbacks) == set(OmegaConf.load(CONFIGS / "callbacks" / "default.yaml"))


@pytest.mark.parametrize("rate", [0.1, 1.0])
def test_partial_fc_rate_reaches_the_loss_from_the_command_line(tmp_path, rate):
    """model.loss_kwargs.sample_rate=r (no '+': the key is in the model config) builds the loss with rate r; with
    r < 1 a training step scores fewer centres than there are classes (Partial FC), with r = 1 all of them."""
    import torch
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}", "model=arcface", "model.backbone=resnet10t",
                                          f"model.loss_kwargs.sample_rate={rate}", "model.num_identities=200",
                                          "model.channels=3", "model.image_size=32", "model.embedding_dim=16"])
    model = instantiate(cfg.model)
    assert model.loss.sample_rate == rate
    emb = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    labels = torch.arange(8)
    model.loss.train()
    model.loss(emb, labels).mean().backward()
    touched = int((model.loss.weight.grad.abs().sum(1) > 0).sum())  # centres scored this step get a gradient
    assert touched == (200 if rate == 1.0 else max(int(rate * 200), 8))
