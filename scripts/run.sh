#!/usr/bin/env bash
# The main job: set up .venv, train the default data set's model if it has no champion yet.
# Usage: scripts/run.sh [DATASET]   (default: breast_cancer, bundled, no network needed)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATASET="${1:-${DATASET:-breast_cancer}}"
MODEL_NAME=$(.venv/bin/python -c "from training.spec import load_dataset_spec as l; print(l('$DATASET').model_name)")
if .venv/bin/bentoml models get "$MODEL_NAME:latest" >/dev/null 2>&1; then
  echo "==> $MODEL_NAME already has a champion in the BentoML store; not retraining"
else
  echo "==> training $DATASET"
  .venv/bin/python -m training --dataset "$DATASET"
fi
