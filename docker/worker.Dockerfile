# syntax=docker/dockerfile:1
# lmr-worker, CPU image. Build from the repository root (the build context must be the repo):
#   docker build -f docker/worker.Dockerfile -t lmr-worker:0.1.0 .
# Run (model registry mounted read-only, metrics/health on 9108):
#   docker run --rm -v "$PWD/registry:/models:ro" -p 127.0.0.1:9108:9108 \
#     -e LMR_BOOTSTRAP_SERVERS=HOST:PORT lmr-worker:0.1.0 run --model /models/lmr-location
# Without registry access: docker/images.sh (`make images`) builds a Debian python3.11 base and
# passes it as BASE_IMAGE, and the machine's own package sources as PIP_* build arguments.
# See docker/README.md for compose, scaling and what was validated.

# Builder and runtime share one base: the venv links that base's python.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# ---- builder: a venv with CPU torch and lmr; nothing from this stage but /opt/venv ships ----
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, from the PyTorch CPU index: the PyPI wheel pulls several GB of CUDA libraries.
# Every other dependency has a manylinux wheel for CPython 3.11, so no compiler is needed.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Other package sources, read by pip from the environment (unset unless given): a local index or wheel
# folder, e.g. --build-arg PIP_FIND_LINKS=/opt/wheels with that folder mounted into the build, and the
# CA bundle of a TLS-inspecting proxy (PIP_CERT).
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
# Not editable: the venv must work without /src. torch==2.13.0 is already satisfied by 2.13.0+cpu.
RUN pip install --no-cache-dir '.[worker]' \
    && python -c "import torch, worker.cli; assert torch.__version__.split('+')[0] == '${TORCH_VERSION}', torch.__version__"

# ---- runtime: slim Python, the venv, a non-root user ----
FROM ${BASE_IMAGE} AS runtime

ARG LMR_UID=10001
ARG LMR_GID=10001
RUN groupadd --system --gid "${LMR_GID}" lmr \
    && useradd --system --uid "${LMR_UID}" --gid lmr --home-dir /home/lmr --create-home \
       --shell /usr/sbin/nologin lmr \
    && mkdir -p /home/lmr/.cache/huggingface /var/lib/lmr /models \
    && chown -R lmr:lmr /home/lmr /var/lib/lmr

COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /opt/lmr/healthcheck.py

# The worker only reads local models (REGISTRY/NAME or a directory): no hub access at run time
# (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE, WANDB_MODE: lmr/environment.py's OFFLINE, checked by tests/docker/test_docker.py).
# Metrics listen on all container interfaces so a published port works; compose publishes
# them on 127.0.0.1 of the host only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/home/lmr/.cache/huggingface \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    WANDB_MODE=offline \
    LMR_MODEL=/models/lmr-location \
    LMR_METRICS_HOST=0.0.0.0 \
    LMR_METRICS_PORT=9108

# A flag, not a secret: hadolint's DL3064 matches "TOKEN" in the name. Kept in its own ENV so the
# ignore covers nothing else. (Silences the HF tokenizers fork warning: lmr/environment.py's QUIET.)
# hadolint ignore=DL3064
ENV TOKENIZERS_PARALLELISM=false

WORKDIR /var/lib/lmr
USER ${LMR_UID}:${LMR_GID}
EXPOSE 9108

# /healthz answers 200 while the main loop ticks (503 once it stalls). Model loading can take a
# while on CPU, hence the start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["/opt/venv/bin/python", "/opt/lmr/healthcheck.py"]

# Exec form: lmr-worker is PID 1 and gets SIGTERM directly (it drains, flushes, commits, exits 0).
ENTRYPOINT ["lmr-worker"]
CMD ["run"]
