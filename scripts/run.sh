#!/usr/bin/env bash
# The main job: set up .venv, train the data set's model if it has no champion yet, serve it.
# Usage: scripts/run.sh [DATASET]   (default: breast_cancer, bundled, no network needed)
# Env: HOST (default 127.0.0.1), PORT (default 3000), TRAIN_ONLY=1 to skip serving.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATASET="${1:-${DATASET:-breast_cancer}}"
MODEL_NAME=$(.venv/bin/python -c "from contract.spec import load_dataset_spec as l; print(l('$DATASET').model_name)")
if .venv/bin/bentoml models get "$MODEL_NAME:latest" >/dev/null 2>&1; then
  echo "==> $MODEL_NAME already has a champion in the BentoML store; not retraining"
  echo "    (retrain: .venv/bin/python -m training --dataset $DATASET)"
else
  echo "==> training $DATASET"
  .venv/bin/python -m training --dataset "$DATASET"
fi
if [ "${TRAIN_ONLY:-0}" = "1" ]; then
  exit 0
fi
echo "==> serving $MODEL_NAME on http://${HOST:-127.0.0.1}:${PORT:-3000} (Swagger UI at /, Ctrl+C stops)"
export MODEL_NAME
exec .venv/bin/bentoml serve --host "${HOST:-127.0.0.1}" --port "${PORT:-3000}"
