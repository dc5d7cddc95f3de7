#!/usr/bin/env bash
# A release, as .github/workflows/release.yml runs it on a version tag: train the preset,
# build the Bento and its image with the project's scripts, push the image tagged with the
# git tag and with the model's version, and render the prod manifests pinned to the image.
# Usage: scripts/release.sh GIT_TAG
# Env: IMAGE_REPO (e.g. ghcr.io/OWNER/REPO; required), PRESET (default: breast_cancer),
#      BACKEND (docker, podman or buildah; containerize.sh's default otherwise),
#      PUSH=0 to build and render without pushing, OUT (default build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
GIT_TAG="${1:?usage: scripts/release.sh GIT_TAG}"
PRESET="${PRESET:-breast_cancer}"
REPO=$(echo "${IMAGE_REPO:?set IMAGE_REPO, e.g. ghcr.io/OWNER/REPO}" | tr '[:upper:]' '[:lower:]')
OUT="${OUT:-build/release}"
BACKEND="${BACKEND:-$(command -v buildah >/dev/null 2>&1 && echo buildah || echo docker)}"
export BACKEND
bash scripts/setup.sh
MODEL_NAME=$(.venv/bin/python -c "from contract.spec import load_dataset_spec as l; print(l('$PRESET').model_name)")
echo "==> training $PRESET"
# Exit 1 means nothing was registered; "not promoted" still ships the current champion.
.venv/bin/python -m training --dataset "$PRESET"
bash scripts/build-bento.sh "$MODEL_NAME"
# The model's version as the image's second tag: NAME-v<MLflow version>-<run id prefix>.
MODEL_VERSION=$(MODEL_NAME="$MODEL_NAME" .venv/bin/python -c '
import os
from serving.model_store import find_served_model
print(find_served_model(os.environ["MODEL_NAME"] + ":latest").version)')
IMAGE="$REPO:$GIT_TAG"
MODEL_IMAGE="$REPO:$MODEL_NAME-$MODEL_VERSION"
bash scripts/containerize.sh "$IMAGE"
engine="$BACKEND"
[ "$engine" = buildah ] || [ "$engine" = docker ] || engine=podman
"$engine" tag "$IMAGE" "$MODEL_IMAGE"
if [ "${PUSH:-1}" != 0 ]; then
  for image in "$IMAGE" "$MODEL_IMAGE"; do
    echo "==> push $image"
    "$engine" push "$image"
  done
fi
bash scripts/render-manifests.sh "$IMAGE" "$OUT/tabular-serving-prod-$GIT_TAG.yaml" prod
printf '%s\n%s\n' "$IMAGE" "$MODEL_IMAGE" > "$OUT/images.txt"
echo "==> released $IMAGE and $MODEL_IMAGE ($MODEL_NAME $MODEL_VERSION); manifests in $OUT"
