"""Servers for integration tests: a real `bentoml serve` of models trained in temporary stores."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from contract.spec import load_dataset_spec
from loadtests.server import bentoml_command, serve_command
from tests.conftest import CLEVELAND, small_config
from training.data import load_dataset
from training.train import run_training

ROOT = Path(__file__).resolve().parents[1]
MAX_BATCH = 50


@dataclass
class Server:
    url: str
    model_name: str
    dataset: object
    log: Path
    capture_dir: Path
    process: subprocess.Popen  # the `bentoml serve` arbiter; its workers are its children


def merged(base: dict, changes: dict) -> dict:
    """`base` with `changes` applied, nested mappings merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = (merged(base[key], value) if isinstance(value, dict)
                    and isinstance(base.get(key), dict) else value)
    return out


def serving_config(tmp: Path, model_name: str, changes: dict | None = None) -> Path:
    config = yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text())
    config |= {"model_name": model_name, "max_batch_records": MAX_BATCH}
    # Drift is checked on demand (POST /drift/check) in tests. The capture, off by default
    # (the store keeps the same records), is on here so that the tests read what it writes;
    # sex is kept out of it and of the store.
    config["monitoring"]["directory"] = str(tmp / "capture")
    config["monitoring"]["drift"] |= {"interval_s": 3600, "min_rows": 20}
    config["monitoring"]["capture"] |= {"enabled": True, "exclude_features": ["sex"]}
    # The store is a file of this server's unless a test points it at PostgreSQL.
    config["monitoring"]["store"] |= {"url": f"sqlite:///{tmp / 'predictions.db'}",
                                      "exclude_features": ["sex"], "flush_interval_s": 0.2,
                                      "metrics_interval_s": 2}
    config = merged(config, changes or {})
    path = tmp / "serving.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses a server fixture (all need `trained_store`) is slow, marked or not."""
    for item in items:
        if "trained_store" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """heart, iris and diabetes champions in one temporary MLflow + BentoML store."""
    home = tmp_path_factory.mktemp("serving-store")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    quiet = Console(quiet=True)
    for name, data in (("heart", CLEVELAND), ("iris", None), ("diabetes", None)):
        run_training(load_dataset(load_dataset_spec(name), data), small_config(), console=quiet)
    return home


def _server(trained_store: Path, tmp: Path, dataset: str, mode: str = "") -> Iterator[Server]:
    yield from serve_dataset(tmp, dataset, mode)


def serve_dataset(tmp: Path, dataset: str, mode: str = "",
                  extra_env: dict[str, str] | None = None,
                  config: dict | None = None) -> Iterator[Server]:
    """Serve `dataset`'s champion with the test serving config, `config` merged into it."""
    spec = load_dataset_spec(dataset)
    # Every `bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir at start, so two
    # servers sharing a home break each other's metrics: each gets a home of its own.
    home = tmp / "bentoml-home"
    shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models" / spec.model_name,
                    home / "models" / spec.model_name)
    env = {
        "BENTOML_HOME": str(home),
        "SERVING_CONFIG": str(serving_config(tmp, spec.model_name, config)),
        "BENTOML_DO_NOT_TRACK": "true",
        "BATCHING_MODE": mode,  # empty: the configured default
    } | (extra_env or {})
    log = tmp / "serve.log"
    data = CLEVELAND if dataset == "heart" else None
    with serve_command(bentoml_command(), env, log) as (url, process):
        yield Server(url, spec.model_name, load_dataset(spec, data), log, tmp / "capture",
                     process)


@pytest.fixture(scope="session")
def heart_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from _server(trained_store, tmp_path_factory.mktemp("heart"), "heart")


@pytest.fixture(scope="module")
def heart_service_mode_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    """The same model behind a separate model service with BentoML's adaptive batching."""
    yield from _server(trained_store, tmp_path_factory.mktemp("heart-svc"), "heart", "service")


@pytest.fixture(scope="module")
def iris_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from _server(trained_store, tmp_path_factory.mktemp("iris"), "iris")


@pytest.fixture(scope="module")
def diabetes_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from _server(trained_store, tmp_path_factory.mktemp("diabetes"), "diabetes")
