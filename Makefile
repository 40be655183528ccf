# Two commands on a fresh clone:  `make demo`  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# IDRISI is downloaded when missing (lmr/datasets.py) unless the caller said offline: decide from the caller's
# LMR_OFFLINE / HF_HUB_OFFLINE, before HF_HUB_OFFLINE=1 below keeps the model hub out of the demo and tests.
ifndef LMR_OFFLINE
LMR_OFFLINE := $(if $(HF_HUB_OFFLINE),$(HF_HUB_OFFLINE),0)
endif
export LMR_OFFLINE
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false
# e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" on machines where PyPI torch is CUDA
TORCH_PIP_ARGS ?=

.PHONY: setup idrisi demo test lint bench-quality bench-speed bench-worker clean

$(BIN)/lmr-worker: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first (on a GPU machine use the CUDA index instead; see README).
	$(BIN)/pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/lmr-worker  ## create .venv and install lmr with its pinned dependencies

idrisi:  ## find IDRISI or download it (lmr/datasets.py); before the set-up, so a missing dataset stops at once
	PYTHONPATH=. $(PY) -m lmr.datasets

demo: idrisi setup  ## broker + model + worker + sample stream, end to end, offline
	$(BIN)/python -m demo

test: setup  ## the whole test suite (CI runs exactly this)
	$(BIN)/ruff check lmr trainer worker geocode demo tests bench docker
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q tests

lint: setup
	$(BIN)/ruff check lmr trainer worker geocode demo tests bench docker
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
