"""No secret reaches what training prints or what MLflow stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND, small_config
from training.data import DataValidationError, load_dataset
from training.redact import redact_url
from training.train import run_training

MARKER = "s3cr3t-9d2e"


@pytest.mark.parametrize(("text", "expected"), [
    (f"https://alice:{MARKER}@mlflow.example/api", "https://***@mlflow.example/api"),
    (f"see https://data.example/heart.csv?token={MARKER}&v=2 now",
     "see https://data.example/heart.csv?token=***&v=2 now"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("no url here", "no url here"),
])
def test_urls_lose_their_credentials(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_a_data_url_with_credentials_is_not_echoed() -> None:
    url = f"http://user:{MARKER}@127.0.0.1:9/heart.csv"  # port 9: nothing listens
    with pytest.raises(DataValidationError) as info:
        load_dataset(load_dataset_spec("heart"), url)
    assert MARKER not in str(info.value) and "***@127.0.0.1:9" in str(info.value)


@pytest.mark.slow  # a full training run
def test_secrets_in_the_environment_stay_out_of_mlflow(stores: Path, monkeypatch) -> None:
    for name in ("API_KEY", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "HF_TOKEN"):
        monkeypatch.setenv(name, f"{MARKER}-{name}")
    console = Console(record=True, width=200)
    run_training(load_dataset(load_dataset_spec("heart"), CLEVELAND), small_config(),
                 console=console)
    assert MARKER not in console.export_text()
    stored = [p for p in stores.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in stored) and len(stored) > 20
    for path in stored:  # the SQLite file (params, tags, metrics) and every artifact
        assert MARKER.encode() not in path.read_bytes(), path
    assert os.environ["API_KEY"].startswith(MARKER)  # the secret was really there
