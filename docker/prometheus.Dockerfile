# syntax=docker/dockerfile:1
# Prometheus from Debian's package, for the compose stacks where the prom/prometheus image cannot be
# pulled (no Docker Hub). docker/images.sh builds it on the Debian base:
#   docker/images.sh prometheus      # -> lmr-prometheus:2.42.0-debian
# and compose uses it through LMR_PROMETHEUS_IMAGE. Debian 12 ships Prometheus 2.42; the flags and the
# configuration compose passes (docker/prometheus.yml) work with it and with prom/prometheus v3.
ARG BASE_IMAGE=debian:12.11-slim
FROM ${BASE_IMAGE}

# The Debian release is fixed by the base; the archive drops superseded versions, so no apt pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus \
    && chown prometheus:prometheus /prometheus

USER prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
