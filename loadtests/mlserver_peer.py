"""Seldon MLServer serving the same pipeline, for the benchmark's side-by-side rows.

MLServer goes into its own virtual environment (.benchmark/mlserver-venv), installed on
first use from PyPI, with the scikit-learn, pandas and numpy versions of requirements.lock
so that the very same pipeline unpickles. Its sklearn runtime runs with adaptive batching
and one parallel worker per core, as its documentation recommends for CPU-bound models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contract.spec import DatasetSpec
from loadtests.server import ROOT, free_port, serve_command

VERSION = "1.7.1"
VENV = ROOT / ".benchmark" / "mlserver-venv"
# MLServer 1.7.1 does not start with uvloop >= 0.22 (its issue #2286).
EXTRA = ["uvloop<0.22"]
SAME_AS_SERVICE = ["scikit-learn", "pandas", "numpy", "pyyaml", "scipy", "joblib"]


def locked(names: list[str]) -> list[str]:
    wanted = {n.lower() for n in names}
    pins = []
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name = line.split("==")[0].strip().lower()
        if "==" in line and name in wanted:
            pins.append(line.strip())
    return pins


def ensure_venv(log: Callable[[str], None] = print) -> Path:
    """MLServer's own environment (a few minutes the first time, then reused)."""
    stamp = VENV / ".installed"
    wanted = json.dumps([VERSION, *EXTRA, *locked(SAME_AS_SERVICE)])
    if stamp.is_file() and stamp.read_text() == wanted:
        return VENV
    log(f"installing MLServer {VERSION} into {VENV} (first time: a few minutes)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"mlserver=={VERSION}", f"mlserver-sklearn=={VERSION}", *EXTRA,
                    *locked(SAME_AS_SERVICE)], check=True)
    stamp.write_text(wanted)
    return VENV


def write_model(folder: Path, pipeline: Any, name: str, workers: int,
                max_batch_size: int = 64, max_batch_time: float = 0.01) -> Path:
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    (folder / "model-settings.json").write_text(json.dumps({
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "max_batch_size": max_batch_size,
        "max_batch_time": max_batch_time,
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }))
    (folder / "settings.json").write_text(json.dumps({
        "parallel_workers": workers, "debug": False, "metrics_endpoint": None,
        "host": "127.0.0.1",
    }))
    return folder


@contextmanager
def mlserver(folder: Path, log: Path) -> Iterator[tuple[str, int]]:
    venv = ensure_venv()

    def command(port: int) -> list[str]:
        settings = folder / "settings.json"
        settings.write_text(json.dumps(json.loads(settings.read_text()) | {
            "http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}))
        return [str(venv / "bin" / "mlserver"), "start", str(folder)]

    # The pipeline's own transformers (contract.features) unpickle from the project.
    env = {"PYTHONPATH": str(ROOT)}
    with serve_command(command, env, log, ready_path="/v2/models/"
                       f"{json.loads((folder / 'model-settings.json').read_text())['name']}/ready",
                       timeout=300) as (url, process):
        yield url, process.pid


def v2_request(spec: DatasetSpec, record: dict[str, Any]) -> dict[str, Any]:
    """One record as an Open Inference Protocol request, one input per column, as MLServer's
    pandas codec reads it; the same body goes to both servers."""
    inputs = []
    for feature in spec.features:
        value = record.get(feature.name)
        if feature.is_categorical:
            inputs.append({"name": feature.name, "shape": [1], "datatype": "BYTES",
                           "data": [None if value is None else str(value)]})
        elif feature.type == "integer":
            inputs.append({"name": feature.name, "shape": [1], "datatype": "INT64",
                           "data": [value]})
        else:
            inputs.append({"name": feature.name, "shape": [1], "datatype": "FP64",
                           "data": [value]})
    return {"inputs": inputs, "parameters": {"content_type": "pd"},
            "outputs": [{"name": "predict_proba" if spec.is_classifier else "predict"}]}

