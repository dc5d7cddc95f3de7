#!/usr/bin/env bash
# Render an overlay with its image moved to IMAGE, without editing the overlay in the tree:
# a throwaway kustomization on top of it, rendered by the project's pinned kubectl.
# Usage: scripts/render-manifests.sh IMAGE OUTPUT [OVERLAY]   (OVERLAY default: prod)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="$1"; OUTPUT="$2"; OVERLAY="${3:-prod}"
case "${IMAGE##*/}" in *@*|*:*) ;; *) echo "error: IMAGE needs a tag or digest: $IMAGE" >&2; exit 2;; esac
name="${IMAGE%%[@]*}"; name="${name%:*}"
suffix="${IMAGE#"$name"}"
mkdir -p build
work=$(mktemp -d "$PWD/build/render.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The overlay's image, whatever registry it names, is the one the base sets (images: name).
from=$(.venv/bin/kubectl kustomize "k8s/overlays/$OVERLAY" | .venv/bin/python -c '
import sys, yaml
images = {c["image"] for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] == "Deployment"
          for c in d["spec"]["template"]["spec"]["containers"]}
assert len(images) == 1, f"expected one image, found {sorted(images)}"
print(images.pop().rsplit(":", 1)[0])')
{
  echo "resources: [$(realpath --relative-to="$work" "k8s/overlays/$OVERLAY")]"
  echo "images:"
  echo "  - name: $from"
  echo "    newName: $name"
  case "$suffix" in
    @*) echo "    digest: ${suffix#@}" ;;
    *)  echo "    newTag: \"${suffix#:}\"" ;;
  esac
} > "$work/kustomization.yaml"
mkdir -p "$(dirname "$OUTPUT")"
.venv/bin/kubectl kustomize "$work" > "$OUTPUT"
echo "==> $OUTPUT: k8s/overlays/$OVERLAY with image $IMAGE"
