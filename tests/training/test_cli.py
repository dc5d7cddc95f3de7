"""The command line as a user runs it: a subprocess against temporary stores."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND, small_config

ROOT = Path(__file__).resolve().parents[2]
# Each test runs the CLI in a subprocess (importing MLflow and scikit-learn takes seconds)
# and one trains.
pytestmark = pytest.mark.slow


def _run(stores: Path, *args: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess:
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{stores / 'mlflow.db'}",
                        "BENTOML_HOME": str(stores / "bentoml")} | (env or {})
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_bad_csv_is_refused_and_nothing_is_registered(stores) -> None:
    frame = pd.read_csv(CLEVELAND, header=None, na_values=["?"])
    frame.loc[0, 4] = 2000  # chol
    frame.loc[1, 2] = 9  # cp
    bad = stores / "bad.data"
    frame.to_csv(bad, header=False, index=False, na_rep="?")
    result = _run(stores, "--dataset", "heart", "--data", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stdout
    assert "column 'chol': 1 value(s) outside the valid range [80, 700], e.g. 2000" in result.stdout
    assert "column 'cp'" in result.stdout and "nothing was trained" in result.stdout
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    assert client.search_registered_models() == []


def test_heart_from_a_local_file_trains_and_registers(stores) -> None:
    config = stores / "training.yaml"
    config.write_text(yaml.safe_dump(small_config().model_dump(mode="json")))
    result = _run(stores, "--dataset", "heart", "--data", str(CLEVELAND), "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CV roc_auc" in result.stdout and "logistic_regression" in result.stdout
    assert "champion: heart-disease-classifier version 1" in result.stdout
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(load_dataset_spec("heart").model_name, "champion")
    assert champion.tags["bentoml_tag"].startswith("heart-disease-classifier:v1-")


def test_unknown_config_key_is_an_error_naming_the_file(stores) -> None:
    config = stores / "typo.yaml"
    raw = small_config().model_dump(mode="json") | {"cv_fold": 3}
    config.write_text(yaml.safe_dump(raw))
    result = _run(stores, "--config", str(config))
    assert result.returncode == 2
    assert "typo.yaml" in result.stdout and "cv_fold" in result.stdout
