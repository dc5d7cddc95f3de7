"""A real `bentoml serve` against models trained into temporary stores."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from rich.console import Console

from tests.conftest import CLEVELAND, small_config
from training.data import load_dataset
from training.spec import load_dataset_spec
from training.train import run_training

ROOT = Path(__file__).resolve().parents[2]
BENTOML = Path(sys.executable).parent / "bentoml"
MAX_BATCH = 50


@dataclass
class Server:
    url: str
    model_name: str
    dataset: object
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving_config(tmp: Path, model_name: str) -> Path:
    config = yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text())
    config |= {"model_name": model_name, "max_batch_records": MAX_BATCH}
    path = tmp / "serving.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def bentoml_serve(env: dict[str, str], log: Path, timeout: float = 90) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BENTOML), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """heart, iris and diabetes champions in one temporary MLflow + BentoML store."""
    home = tmp_path_factory.mktemp("serving-store")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    quiet = Console(quiet=True)
    for name, data in (("heart", CLEVELAND), ("iris", None), ("diabetes", None)):
        run_training(load_dataset(load_dataset_spec(name), data), small_config(), console=quiet)
    return home


def _server(trained_store: Path, tmp: Path, dataset: str) -> Iterator[Server]:
    spec = load_dataset_spec(dataset)
    env = {
        "BENTOML_HOME": os.environ["BENTOML_HOME"],
        "SERVING_CONFIG": str(serving_config(tmp, spec.model_name)),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    log = tmp / "serve.log"
    data = CLEVELAND if dataset == "heart" else None
    with bentoml_serve(env, log) as url:
        yield Server(url, spec.model_name, load_dataset(spec, data), log)


@pytest.fixture(scope="session")
def heart_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from _server(trained_store, tmp_path_factory.mktemp("heart"), "heart")


@pytest.fixture(scope="module")
def iris_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from _server(trained_store, tmp_path_factory.mktemp("iris"), "iris")


@pytest.fixture(scope="module")
def diabetes_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from _server(trained_store, tmp_path_factory.mktemp("diabetes"), "diabetes")
