#!/usr/bin/env bash
# Builds the lmr images (`make images`): lmr-worker:VERSION and the trainer, with Docker or podman.
#
#   docker/images.sh                 # both images
#   docker/images.sh worker          # one of them (worker, trainer, prometheus, base)
#
# Where a registry is reachable the Dockerfiles' own defaults are used (python:3.11-slim, the NVIDIA
# CUDA base, the PyTorch CPU index). Where it is not, the base is built from Debian packages first
# (debootstrap bookworm + Debian's python3.11, the same minor version as python:3.11-slim), and the
# trainer becomes a CPU build on that base (tag VERSION-cpu). Where download.pytorch.org is not
# reachable, pip uses this machine's own pip configuration (`pip config list`): its local index
# folders and wheel folders are mounted read-only into the build (podman only: `docker build` cannot
# mount host folders). Without registry access it also builds lmr-prometheus from Debian's package for
# the compose stacks (LMR_PROMETHEUS_IMAGE); Grafana has no Debian package and no reachable source.
#
# Settings (environment):
#   LMR_ENGINE=docker|podman   default: docker when its engine answers, else podman (installed with
#                              apt when run as root on Debian/Ubuntu)
#   LMR_BASE_IMAGE=IMAGE       the Python base for both images (skips the registry check)
#   LMR_PIP_SOURCES=online|host   default: online when download.pytorch.org answers, else host
#   LMR_DEBIAN_MIRROR=URL      for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
PY_BASE=docker.io/library/python:3.11.13-slim-bookworm
CUDA_BASE=docker.io/nvidia/cuda:13.0.0-base-ubuntu24.04
LOCAL_BASE=localhost/lmr-python:3.11-bookworm
CPU_INDEX=https://download.pytorch.org/whl/cpu
MIRROR=${LMR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ENGINE=${LMR_ENGINE:-}
NICE=(nice -n 10)

say() { echo "images: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# apt packages the build needs, installed when root with apt; otherwise say what to install.
need_packages() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}: install them (sudo apt-get install ${missing[*]}), or run a Docker engine and set LMR_ENGINE=docker"
  fi
}

pick_engine() {
  if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
      ENGINE=docker
    else
      ENGINE=podman
    fi
  fi
  if [ "$ENGINE" = podman ]; then
    # runc; netavark with iptables and aardvark-dns (networks with DNS for compose); catatonit
    # (podman's init and pause image). Checked one by one: apt calls them recommendations only.
    if command -v dpkg-query >/dev/null 2>&1; then
      need_packages podman runc netavark aardvark-dns iptables catatonit
    else
      command -v podman >/dev/null 2>&1 || die "no podman: install podman and runc, or set LMR_ENGINE=docker"
    fi
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/docker/podman-containers.conf}
  fi
  command -v "$ENGINE" >/dev/null 2>&1 || die "no $ENGINE: install it, or set LMR_ENGINE"
  say "engine: $ENGINE ($("$ENGINE" --version))"
}

have_image() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

# The image itself when present or pullable within a minute, else nothing.
pullable() {
  have_image "$1" || timeout 60 "$ENGINE" pull -q "$1" >/dev/null 2>&1
}

# Debian 12 minbase + python3.11 (+ venv, `python`, CA certificates), imported as LOCAL_BASE.
build_local_base() {
  have_image "$LOCAL_BASE" && return 0
  [ "$(id -u)" = 0 ] || die "building the Debian base needs root (debootstrap); or set LMR_BASE_IMAGE"
  need_packages debootstrap
  local root
  root=$(mktemp -d /var/tmp/lmr-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" EXIT
  say "debootstrap bookworm into $root (from $MIRROR)"
  "${NICE[@]}" debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || die "debootstrap failed: see $root.log"
  rm -f "$root.log"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | "$ENGINE" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  "$ENGINE" run --rm --network host "$LOCAL_BASE" python -c \
    'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || die "$LOCAL_BASE has no Python 3.11"
  say "built $LOCAL_BASE"
}

# Sets BUILD_ARGS (pip sources) and MOUNTS (local package folders) for the builds.
BUILD_ARGS=()
MOUNTS=()
pip_sources() {
  local mode=${LMR_PIP_SOURCES:-}
  if [ -z "$mode" ]; then
    if curl -fsI --max-time 15 "$CPU_INDEX/" >/dev/null 2>&1; then mode=online; else mode=host; fi
  fi
  [ "$mode" = online ] && return 0
  [ "$mode" = host ] || die "LMR_PIP_SOURCES is online or host, not $mode"
  local pip line key value v path find="" extra="" index="" cert=""
  pip=$(command -v pip3 || command -v pip) || die "no pip on this machine to read package sources from"
  while IFS= read -r line; do
    key=${line%%=*}
    key=${key#*.}
    value=${line#*=}
    value=${value//\'/}
    for v in $value; do
      case $key in
        find-links) [[ " $find " == *" $v "* ]] || find="$find $v" ;;
        extra-index-url) [[ " $extra " == *" $v "* ]] || extra="$extra $v" ;;
        index-url) index=$v ;;
        cert) cert=$v ;;
        *) continue ;;
      esac
      # A local folder is mounted at the same path; for a simple index, the folder above `simple`,
      # where its links point.
      path=${v#file://}
      [ "${path:0:1}" = / ] || continue
      [ -e "$path" ] || die "pip source $path (pip config list) does not exist"
      [ "$(basename "$path")" != simple ] || path=$(dirname "$path")
      [[ " ${MOUNTS[*]} " == *" $path:$path:ro "* ]] || MOUNTS+=(-v "$path:$path:ro")
    done
  done < <("$pip" config list 2>/dev/null)
  [ -n "$find$extra$index" ] || die "no CPU torch index reachable and no pip sources configured on this machine"
  [ ${#MOUNTS[@]} -eq 0 ] || [ "$ENGINE" = podman ] || die "docker build cannot mount $find $extra: use LMR_ENGINE=podman"
  BUILD_ARGS+=(--build-arg "TORCH_INDEX_URL=${index:-https://pypi.org/simple}")
  [ -z "$find" ] || BUILD_ARGS+=(--build-arg "PIP_FIND_LINKS=${find# }")
  [ -z "$extra" ] || BUILD_ARGS+=(--build-arg "PIP_EXTRA_INDEX_URL=${extra# }")
  [ -z "$index" ] || BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$index")
  [ -z "$cert" ] || BUILD_ARGS+=(--build-arg "PIP_CERT=$cert")
  say "pip sources from this machine: find-links${find:- none}; extra indexes${extra:- none}; CA ${cert:-default}"
}

build() { # build NAME TAG BASE [extra build args...]
  local name=$1 tag=$2 base=$3 start
  shift 3
  local flags=(--network host -f "docker/$name.Dockerfile" -t "$tag" --build-arg "BASE_IMAGE=$base")
  [ "$ENGINE" = podman ] && flags+=(--format docker --ignorefile "docker/$name.Dockerfile.dockerignore" "${MOUNTS[@]}")
  start=$(date +%s)
  say "building $tag on $base"
  "${NICE[@]}" "$ENGINE" build "${flags[@]}" "${BUILD_ARGS[@]}" "$@" . || die "build of $tag failed"
  say "built $tag in $(($(date +%s) - start)) s: $("$ENGINE" image inspect -f '{{.Size}}' "$tag") bytes"
}

main() {
  local targets=("$@") local_base=""
  pick_engine
  local base=${LMR_BASE_IMAGE:-} trainer_base="" trainer_tag="lmr-trainer:$VERSION"
  local trainer_args=()
  if [ -z "$base" ]; then
    if pullable "$PY_BASE"; then base=$PY_BASE; else
      say "cannot pull $PY_BASE (no registry access): using $LOCAL_BASE, built from Debian packages"
      build_local_base
      base=$LOCAL_BASE
      local_base=1
    fi
  fi
  [ ${#targets[@]} -gt 0 ] || targets=(worker trainer ${local_base:+prometheus})
  if [ "${targets[*]}" = base ]; then return 0; fi
  pip_sources
  if [[ " ${targets[*]} " != *" trainer "* ]]; then
    :
  elif [ -z "${LMR_BASE_IMAGE:-}" ] && pullable "$CUDA_BASE"; then trainer_base=$CUDA_BASE; else
    # No CUDA base: a CPU trainer on the Python base, torch from the CPU sources.
    trainer_base=$base
    trainer_tag="lmr-trainer:$VERSION-cpu"
    printf '%s\n' "${BUILD_ARGS[@]}" | grep -q '^TORCH_INDEX_URL=' || trainer_args=(--build-arg "TORCH_INDEX_URL=$CPU_INDEX")
  fi
  local t prom_base=debian:12.11-slim
  [ -z "$local_base" ] || prom_base=$base
  for t in "${targets[@]}"; do
    case $t in
      worker) build worker "lmr-worker:$VERSION" "$base" ;;
      trainer) build trainer "$trainer_tag" "$trainer_base" "${trainer_args[@]}" ;;
      prometheus) build prometheus "lmr-prometheus:2.42.0-debian" "$prom_base" ;;
      base) ;;
      *) die "unknown image $t (worker, trainer, prometheus, base)" ;;
    esac
  done
  "$ENGINE" images --filter reference='*lmr-*' >&2
}

main "$@"
