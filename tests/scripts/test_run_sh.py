"""scripts/run.sh, the README's first command: on empty stores it trains the default data set
(breast_cancer, bundled with scikit-learn) and serves it; Ctrl+C stops it; a second run finds
the champion and does not retrain."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from contract.spec import load_dataset_spec
from loadtests.server import free_port
from serving.model_store import example_record
from training.data import load_dataset

pytestmark = pytest.mark.slow  # the full training config, then a real `bentoml serve`

ROOT = Path(__file__).resolve().parents[2]
# Settings a developer's shell may hold that would change what run.sh does.
UNSET = ("SERVING_CONFIG", "MODEL_NAME", "MODEL_TAG", "BATCHING_MODE", "DATASET", "TRAIN_ONLY",
         "API_KEY", "API_KEY_FILE")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return env | {
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "CAPTURE_DIR": str(tmp_path / "capture"),
        "BENTOML_DO_NOT_TRACK": "true",
    } | extra


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_run_sh_trains_the_default_model_serves_it_and_stops_on_ctrl_c(tmp_path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env=_env(tmp_path, PORT=str(port), HOST="127.0.0.1"))
    try:
        deadline = time.monotonic() + 900  # training with the committed config, then start-up
        while True:
            assert process.poll() is None, f"run.sh exited {process.returncode}:\n" \
                + log.read_text()[-4000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(1)

        spec = load_dataset_spec("breast_cancer")
        row = load_dataset(spec).features.iloc[0].to_dict()
        answer = httpx.post(f"{url}/predict", json=example_record(spec, row), timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_name"] == "breast-cancer-classifier"
        assert body["prediction"] in ("malignant", "benign") and "risk_level" in body
        assert "==> training breast_cancer" in log.read_text()
        # The champion went to the temporary stores named by the environment.
        assert (tmp_path / "bentoml" / "models" / "breast-cancer-classifier").is_dir()
        assert (tmp_path / "mlflow.db").is_file()

        os.killpg(process.pid, signal.SIGINT)  # Ctrl+C in the terminal: the whole group
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 20
        while not _gone(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _gone(process.pid), "bentoml workers outlived Ctrl+C"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/readyz", timeout=2)
    finally:
        if process.poll() is None or not _gone(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # Again: the champion is there, so no training (TRAIN_ONLY=1: and no serving).
    again = subprocess.run(["bash", "scripts/run.sh"], cwd=ROOT, capture_output=True, text=True,
                           env=_env(tmp_path, TRAIN_ONLY="1"), timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already has a champion" in again.stdout and "==> training" not in again.stdout
