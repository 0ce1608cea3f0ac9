# The two commands of the README: `make train` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# albumentations otherwise calls the network on import; W&B stays offline unless you configured it.
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_SILENT := true

.PHONY: install train test test-all bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# zoo.gan's pretrained 64-px face generator (weights.tar only; its declared deps pin rdkit/moviepy/pillow).
	$(PY) -m pip install -q --no-deps gan-face-generate==1.1.1
	touch $@

install: $(VENV)/.installed

train: install
	$(PY) train.py model=landmark_validation sampler=lpbb $(ARGS)

test: install
	$(PY) -m pytest $(ARGS)

test-all: install
	$(PY) -m pytest -m "slow or not slow" $(ARGS)
