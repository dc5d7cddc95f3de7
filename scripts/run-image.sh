#!/usr/bin/env bash
# Run the image locally as it runs in Kubernetes: non-root, read-only root file system,
# writable scratch only where BentoML needs it. Usage: scripts/run-image.sh [IMAGE] [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-localhost/tabular-serving:dev}"
PORT="${2:-3000}"
ENGINE="${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/container/containers.conf}"
scratch=()
for dir in /tmp /home/bentoml/prometheus_multiproc_dir /home/bentoml/bentos \
           /home/bentoml/models /home/bentoml/envs /home/bentoml/tmp; do
  scratch+=(--tmpfs "$dir:rw,mode=1777")
done
echo "==> $IMAGE on http://127.0.0.1:$PORT (Ctrl+C stops it; SIGTERM drains in-flight requests)"
exec "$ENGINE" run --rm --read-only "${scratch[@]}" -p "127.0.0.1:$PORT:3000" "$IMAGE"
