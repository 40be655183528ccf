# syntax=docker/dockerfile:1
# lmr-trainer, CUDA image. Build from the repository root (the build context must be the repo):
#   docker build -f docker/trainer.Dockerfile -t lmr-trainer:0.1.0 .
# Run on a GPU host (NVIDIA driver >= 580 for CUDA 13.0, NVIDIA Container Toolkit installed):
#   docker run --rm --gpus all --shm-size 8g \
#     -v "$(.venv/bin/python -m lmr.datasets):/data:ro" -v "$PWD/registry:/models" -v "$PWD/runs:/runs" \
#     lmr-trainer:0.1.0 run --train '/data/lmr/*/train.jsonl' --eval '/data/lmr/*/dev.jsonl' \
#       --registry /models --output-dir /runs --device cuda
# See docker/README.md for compose and what was validated.
#
# CUDA: the torch==2.13.0 Linux wheel on PyPI is built for CUDA 13.0 and brings its own CUDA
# runtime, cuBLAS, cuDNN and NCCL as pip packages. The image therefore starts from NVIDIA's small
# `base` flavour of the matching CUDA release (driver-compatibility metadata and the
# NVIDIA_* variables the container toolkit reads) instead of `cudnn-runtime`, which would ship a
# second ~3 GB copy of the same libraries. For an older driver, build a CUDA 12 variant, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# (if that index has torch 2.13.0) and change both FROM lines to the matching nvidia/cuda 12.x tag.

# Without registry access: docker/images.sh (`make images`) builds a CPU variant on a Debian
# python3.11 base (BASE_IMAGE, TORCH_INDEX_URL and the PIP_* sources as build arguments).

# Builder and runtime share one base: the venv links that base's python.
ARG BASE_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04

# ---- builder: a venv with CUDA torch and lmr; nothing from this stage but /opt/venv ships ----
FROM ${BASE_IMAGE} AS builder

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Ubuntu 24.04's Python 3.12 (the runtime stage installs the same interpreter at the same path).
# Not version-pinned: the pinned base tag fixes the Ubuntu release, and the archive drops
# superseded package versions, so exact apt pins would break rebuilds after security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://pypi.org/simple
# Other package sources, read by pip from the environment (unset unless given); see worker.Dockerfile.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY lmr ./lmr
COPY trainer ./trainer
COPY worker ./worker
COPY geocode ./geocode
# Not editable: the venv must work without /src. Every dependency has a cp312 manylinux wheel.
RUN pip install --no-cache-dir '.[train]' \
    && python -c "import torch, trainer.cli; assert torch.__version__.split('+')[0] == '${TORCH_VERSION}', torch.__version__"

# ---- runtime: the CUDA base, Python, the venv, a non-root user ----
FROM ${BASE_IMAGE} AS runtime

ENV DEBIAN_FRONTEND=noninteractive
# Same reason as above for not pinning apt versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ARG LMR_UID=10001
ARG LMR_GID=10001
RUN groupadd --system --gid "${LMR_GID}" lmr \
    && useradd --system --uid "${LMR_UID}" --gid lmr --home-dir /home/lmr --create-home \
       --shell /usr/sbin/nologin lmr \
    && mkdir -p /home/lmr/.cache/huggingface /var/lib/lmr /data /models /runs \
    && chown -R lmr:lmr /home/lmr /var/lib/lmr /models /runs

COPY --from=builder /opt/venv /opt/venv

# The trainer may fetch a base model from the Hugging Face Hub (default hf:urchade/gliner_large-v2.1):
# HF_HOME is a directory the user owns; mount a volume there to keep downloads between runs.
# Secrets (HF_TOKEN, WANDB_API_KEY) are passed at run time, never baked in.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/home/lmr/.cache/huggingface \
    WANDB_DIR=/runs \
    LMR_REGISTRY=/models \
    LMR_OUTPUT_DIR=/runs

# A flag, not a secret: hadolint's DL3064 matches "TOKEN" in the name. Kept in its own ENV so the
# ignore covers nothing else. (Silences the HF tokenizers fork warning: lmr/environment.py's QUIET.)
# hadolint ignore=DL3064
ENV TOKENIZERS_PARALLELISM=false

WORKDIR /var/lib/lmr
USER ${LMR_UID}:${LMR_GID}

# A batch job, not a service: no port and no health check.
ENTRYPOINT ["lmr-trainer"]
CMD ["--help"]
