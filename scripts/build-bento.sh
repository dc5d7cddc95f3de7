#!/usr/bin/env bash
# Build the Bento of the service and the configured champion, labelled with the data set,
# the model version and the git commit. Usage: scripts/build-bento.sh [MODEL_NAME]
# Env: MODEL_TAG (an exact BentoML tag, e.g. the challenger's twin for a canary image)
# instead of MODEL_NAME:latest, the champion.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL_NAME="${1:-${MODEL_NAME:-$(.venv/bin/python -c 'from serving.config import load_serving_config as l; print(l().served_tag.split(":")[0])')}}"
export MODEL_NAME
labels=$(.venv/bin/python - <<'PY'
import os, subprocess
from serving.model_store import find_served_model
served = find_served_model(os.environ.get("MODEL_TAG") or os.environ["MODEL_NAME"] + ":latest")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip() or "unknown"
print(f"--label dataset={served.spec.name} --label model={served.tag.replace(':', '_')} "
      f"--label mlflow_model_version={served.labels.get('mlflow_model_version', '')} "
      f"--label git_commit={commit}")
PY
)
# WITH_DRIFT=1: Evidently in the image, so it runs the drift check itself (+370 MB).
.venv/bin/python scripts/serving_requirements.py ${WITH_DRIFT:+--with-drift}
# The Bento serves exactly the model it contains (MODEL_TAG in its environment), from a
# local base image when BASE_IMAGE is set (air-gapped sites, no registry).
.venv/bin/python - "${BASE_IMAGE:-}" <<'PY'
import os, sys, yaml
from serving.model_store import find_served_model
spec = yaml.safe_load(open("bentofile.yaml"))
tag = find_served_model(os.environ.get("MODEL_TAG") or os.environ["MODEL_NAME"] + ":latest").tag
spec["docker"].setdefault("env", {})["MODEL_TAG"] = tag
if sys.argv[1]:
    spec["docker"]["base_image"] = sys.argv[1]
    spec["docker"].pop("distro", None)
open(".bentofile.local.yaml", "w").write(yaml.safe_dump(spec, sort_keys=False))
PY
bentofile=.bentofile.local.yaml
# shellcheck disable=SC2086
.venv/bin/bentoml build -f "$bentofile" $labels
