#!/usr/bin/env bash
# Build the container image of the newest Bento with `bentoml containerize`.
# Usage: scripts/containerize.sh [IMAGE]   (default localhost/tabular-serving:dev)
# Env: BACKEND (buildah, podman or docker; default: buildah if installed, else docker),
#      BENTO (a Bento tag; default the newest tabular-serving Bento).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-localhost/tabular-serving:dev}"
BACKEND="${BACKEND:-$(command -v buildah >/dev/null 2>&1 && echo buildah || echo docker)}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/container/containers.conf}"
BENTO="${BENTO:-$(.venv/bin/bentoml list tabular-serving -o json | .venv/bin/python -c \
  'import json,sys; print(sorted(json.load(sys.stdin), key=lambda b: b["creation_time"])[-1]["tag"])')}"
# BentoML 1.4.39 refuses a dockerfile_template outside the working directory, and builds
# in a temporary directory: put that directory under ours.
mkdir -p build/tmp
export TMPDIR="$PWD/build/tmp"
opts=()
[ "$BACKEND" = docker ] || opts=(--opt network=host)
echo "==> bentoml containerize $BENTO -> $IMAGE ($BACKEND)"
.venv/bin/bentoml containerize "$BENTO" --backend "$BACKEND" -t "$IMAGE" "${opts[@]}"
