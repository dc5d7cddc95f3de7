#!/usr/bin/env bash
# A local Debian (bookworm) base image with Python 3.11, made with debootstrap, for sites
# without a registry (air-gapped, or no Docker Hub). Optional CA bundle for builds behind
# a TLS-intercepting proxy: EXTRA_CA_BUNDLE=/path/to/bundle.pem.
# Usage: scripts/build-base-image.sh [IMAGE]   (default localhost/tabular-python:3.11-bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-localhost/tabular-python:3.11-bookworm}"
export CONTAINERS_CONF="$PWD/container/containers.conf"
if podman image exists "$IMAGE"; then
  echo "==> $IMAGE exists"; exit 0
fi
ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT
echo "==> debootstrap bookworm into $ROOTFS (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$ROOTFS" >/dev/null
if [ -n "${EXTRA_CA_BUNDLE:-}" ]; then
  cp "$EXTRA_CA_BUNDLE" "$ROOTFS/usr/local/share/ca-certificates/extra-ca.crt"
  chroot "$ROOTFS" update-ca-certificates >/dev/null
fi
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "==> built $IMAGE ($(podman image inspect "$IMAGE" --format '{{.Size}}') bytes)"
