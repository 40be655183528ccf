# Two commands on a fresh clone:  `make demo`  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# IDRISI is downloaded when missing (lmr/datasets.py) unless the caller said offline: decide from the caller's
# LMR_OFFLINE / HF_HUB_OFFLINE, before the demo and the tests keep the model hub out (HF_HUB_OFFLINE=1 and
# the other defaults of lmr/environment.py, which they set themselves).
ifndef LMR_OFFLINE
LMR_OFFLINE := $(if $(HF_HUB_OFFLINE),$(HF_HUB_OFFLINE),0)
endif
export LMR_OFFLINE
# e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" on machines where PyPI torch is CUDA
TORCH_PIP_ARGS ?=

.PHONY: setup browser idrisi demo test test-fast lint docs results images bench-quality bench-speed bench-worker clean

$(BIN)/lmr-worker: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first (on a GPU machine use the CUDA index instead; see README).
	$(BIN)/pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/lmr-worker browser  ## create .venv and install lmr with its pinned dependencies

# Headless Chromium for the page tests (tests/browser.py): Debian's `chromium`, installed when run as
# root with apt; elsewhere those tests skip and say how to get a browser.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null) || echo "could not install chromium: the browser tests will skip"; \
	else echo "no chromium and no root/apt to install it: the browser tests will skip"; fi

idrisi:  ## find IDRISI or download it (lmr/datasets.py); before the set-up, so a missing dataset stops at once
	PYTHONPATH=. $(PY) -m lmr.datasets

DEMO_ARGS ?=
demo: idrisi setup  ## broker + model + worker + sample stream, end to end, offline (DEMO_ARGS: python -m demo -h)
	$(BIN)/python -m demo $(DEMO_ARGS)

test: setup  ## the whole test suite (CI runs exactly this)
	$(BIN)/ruff check lmr trainer worker geocode demo tests bench docker
	$(BIN)/ruff format --check lmr trainer worker geocode demo tests bench docker
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q tests

test-fast: setup  ## the suite without the tests marked slow, no lint: the edit-test loop (tests/README.md)
	$(BIN)/pytest -q -m "not slow" tests

lint: setup
	$(BIN)/ruff check lmr trainer worker geocode demo tests bench docker
	$(BIN)/ruff format --check lmr trainer worker geocode demo tests bench docker
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: setup  ## serve the user guide on http://127.0.0.1:8000 (make test builds it strictly)
	$(BIN)/mkdocs serve

results: setup  ## render docs/results.md and the README's headline table from results/*.json
	$(BIN)/python -m lmr.results render

# Both images with docker or podman (docker/images.sh): from Docker Hub and the PyTorch CPU index where
# they answer, else from a Debian base built here and this machine's pip sources. tests/docker/test_images.py
# runs them when built (it skips otherwise). IMAGES="worker" builds one.
images:  ## build lmr-worker and lmr-trainer (docker/README.md)
	docker/images.sh $(IMAGES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
