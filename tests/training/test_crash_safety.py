"""Training killed outright (SIGKILL, no cleanup) at each step: the serving side never sees
a half-made champion, and the next run repairs whatever was left, so MLflow's champion and
BentoML's latest model are the same model again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import CLEVELAND, small_config
from tests.training.test_cli import _run
from training.faults import POINTS

MODEL = "heart-disease-classifier"

pytestmark = pytest.mark.slow  # trains in subprocesses, killed and rerun


def train(stores: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    config = stores / "training.yaml"
    config.write_text(yaml.safe_dump(small_config().model_dump(mode="json")))
    return _run(stores, "--dataset", "heart", "--data", str(CLEVELAND), "--config", str(config),
                env={"TRAINING_KILL_AT": kill_at or ""})


def bento_models(stores: Path) -> list[dict]:
    """`bentoml models list` on the store, as a user would run it; fails if it cannot list."""
    bentoml = Path(sys.executable).parent / "bentoml"
    result = subprocess.run([str(bentoml), "models", "list", "-o", "json"], capture_output=True,
                            text=True, env=os.environ | {"BENTOML_HOME": str(stores / "bentoml")},
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def latest_bento_tag(stores: Path) -> str | None:
    latest = stores / "bentoml" / "models" / MODEL / "latest"
    return f"{MODEL}:{latest.read_text().strip()}" if latest.is_file() else None


def client(stores: Path) -> MlflowClient:
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def assert_consistent(stores: Path) -> None:
    mlflow = client(stores)
    champion = mlflow.get_model_version_by_alias(MODEL, "champion")
    twin = champion.tags["bentoml_tag"]
    tags = {m["tag"] for m in bento_models(stores)}
    assert twin in tags and latest_bento_tag(stores) == twin
    versions = {v.tags.get("bentoml_tag") for v in mlflow.search_model_versions(f"name='{MODEL}'")}
    assert tags <= versions  # every BentoML model is an MLflow version
    experiment = mlflow.get_experiment_by_name(MODEL)
    running = mlflow.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert running == []


@pytest.mark.parametrize("point", POINTS)
def test_killed_training_is_repaired_by_the_next_run(stores: Path, point: str) -> None:
    killed = train(stores, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:]
    # Right after the kill: the store still lists, and whatever BentoML would serve is a
    # model MLflow registered (never half a model).
    registered = {v.tags.get("bentoml_tag")
                  for v in client(stores).search_model_versions(f"name='{MODEL}'")}
    served = latest_bento_tag(stores)
    assert served is None or served in registered
    assert len(bento_models(stores)) == (1 if point == "after_export" else 0)

    repaired = train(stores)
    assert repaired.returncode == 0, repaired.stdout[-3000:]
    assert "was left RUNNING by a killed process" in repaired.stdout
    if point == "after_alias":  # champion in MLflow, not yet in BentoML: exported now
        assert "recovered" in repaired.stdout
    assert_consistent(stores)


def test_a_half_written_model_folder_is_removed(stores: Path) -> None:
    assert train(stores).returncode == 0
    # The state a kill during BentoML's folder-by-folder copy leaves: a model folder
    # without model.yaml (made by hand: the copy takes milliseconds to hit with a signal).
    champion = latest_bento_tag(stores)
    folder = stores / "bentoml" / "models" / MODEL
    half = folder / "v9-deadbeef"
    shutil.copytree(folder / champion.split(":")[1], half)
    (half / "model.yaml").unlink()
    old = time.time() - 3600
    os.utime(half, (old, old))
    broken = subprocess.run([str(Path(sys.executable).parent / "bentoml"), "models", "list"],
                            capture_output=True, text=True, timeout=120,
                            env=os.environ | {"BENTOML_HOME": str(stores / "bentoml")})
    assert broken.returncode != 0  # why this matters: one such folder breaks every listing
    repaired = train(stores)
    assert repaired.returncode == 0, repaired.stdout[-3000:]
    assert f"removed: {MODEL}:v9-deadbeef" in repaired.stdout
    assert not half.exists()
    assert_consistent(stores)
