"""The two registries: MLflow (tracking, Model Registry, alias `champion`) and the BentoML store.

MLflow's alias is the source of truth for which version is champion. The BentoML store
holds every champion, exported from MLflow (so a failed export can always be redone from
MLflow alone), tagged `NAME:v<mlflow version>-<run id prefix>`, so `NAME:latest` is the
newest champion.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from inference.compiled import CompiledModel
from inference.predictor import COMPILED_OBJECT
from training.faults import kill_point

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHAMPION = "champion"
SERVING_DIR = "serving"  # run artifact folder with what the BentoML export needs
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference_sample.parquet"
COMPILED_DIR = "compiled"  # run artifact folder with the compiled serving form, if any


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else the embedded store: a SQLite file in the project."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def setup_mlflow(experiment_name: str) -> MlflowClient:
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(experiment_name) is None:
        location = None
        if uri.startswith("sqlite:///"):
            # Keep artifacts beside the SQLite file, not in whatever directory we run from.
            db_dir = Path(uri.removeprefix("sqlite:///")).resolve().parent
            location = (db_dir / "mlruns" / experiment_name).as_uri()
        client.create_experiment(experiment_name, artifact_location=location)
    mlflow.set_experiment(experiment_name)
    return client


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        return f"{out}-dirty" if dirty else out
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def champion_version(client: MlflowClient, model_name: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def bento_tag_for(model_name: str, version: str, run_id: str) -> str:
    return f"{model_name}:v{version}-{run_id[:8]}"


def in_bento_store(tag: str) -> bool:
    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        return False
    return True


def export_to_bentoml(client: MlflowClient, model_name: str, version: str,
                      alias: str = CHAMPION) -> bentoml.Model:
    """Copy an MLflow model version, with its serving metadata, into the BentoML store."""
    import mlflow.sklearn

    mv = client.get_model_version(model_name, version)
    tag = mv.tags.get("bentoml_tag") or bento_tag_for(model_name, version, mv.run_id)
    pipeline = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                run_id=mv.run_id, artifact_path=SERVING_DIR, dst_path=tmp
            )
        )
        metadata = mlflow.artifacts.load_dict((folder / METADATA_FILE).as_uri())
        reference = pd.read_parquet(folder / REFERENCE_FILE)
        compiled = _compiled_artifacts(client, mv.run_id, Path(tmp))
    metadata = _without_none(
        metadata | {"mlflow_model_version": str(version), "mlflow_run_id": mv.run_id}
    )
    labels = {
        "dataset": metadata["dataset"],
        "task": metadata["task"],
        "mlflow_model_name": model_name,
        "mlflow_model_version": str(version),
        "mlflow_run_id": mv.run_id,
        "mlflow_alias": alias,  # the shadow finds the challenger by it
        "data_digest": metadata["data_digest"],
    }
    signatures = {"predict": {"batchable": True, "batch_dim": 0}}
    if metadata["task"] != "regression":
        signatures["predict_proba"] = {"batchable": True, "batch_dim": 0}
    return bentoml.sklearn.save_model(
        tag,
        pipeline,
        signatures=signatures,
        labels=labels,
        metadata=metadata,
        custom_objects={"reference_sample": reference} | (
            {COMPILED_OBJECT: compiled.to_dict()} if compiled is not None else {}),
    )


def _compiled_artifacts(client: MlflowClient, run_id: str, tmp: Path) -> CompiledModel | None:
    """The compiled form logged with the run (training/compile.py), if it passed parity."""
    if not client.list_artifacts(run_id, COMPILED_DIR):
        return None
    folder = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=COMPILED_DIR, dst_path=str(tmp))
    return CompiledModel.load(Path(folder))


def _without_none(value: Any) -> Any:
    """BentoML metadata refuses None; absent keys mean the same to the pydantic spec models."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def owner_tags() -> dict[str, str]:
    """Which process owns a run: lets a later run tell a dead run from a live one."""
    return {"owner.host": socket.gethostname(), "owner.pid": str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def close_dead_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the runs still RUNNING whose process on this host is gone (a run killed
    before it could end them); runs of live processes and of other hosts are left alone."""
    closed = []
    host = socket.gethostname()
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  max_results=1000):
        tags = run.data.tags
        pid = tags.get("owner.pid", "")
        if tags.get("owner.host") == host and pid.isdigit() and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, status="KILLED")
            closed.append(run.info.run_id)
    return closed


def remove_half_written(model_name: str, min_age_s: float = 60.0) -> list[str]:
    """Delete model folders a killed export left without model.yaml.

    BentoML copies a new model into its store folder by folder and writes `latest` after;
    a kill during the copy leaves a folder that makes every store listing fail. Folders
    younger than `min_age_s` may be another export still copying, so they are kept.
    """
    from bentoml._internal.configuration.containers import BentoMLContainer

    root = Path(BentoMLContainer.model_store.get()._path) / model_name.lower()
    removed = []
    for folder in root.iterdir() if root.is_dir() else ():
        if (folder.is_dir() and not (folder / "model.yaml").is_file()
                and time.time() - folder.stat().st_mtime > min_age_s):
            shutil.rmtree(folder)
            removed.append(f"{model_name}:{folder.name}")
    return removed


def reconcile_champion(client: MlflowClient, model_name: str) -> str | None:
    """Export the MLflow champion to BentoML if an earlier run stopped before it did.

    Returns the BentoML tag that was recovered, or None if nothing was missing.
    """
    mv = champion_version(client, model_name)
    if mv is None:
        return None
    tag = mv.tags.get("bentoml_tag") or bento_tag_for(model_name, mv.version, mv.run_id)
    if in_bento_store(tag):
        return None
    export_to_bentoml(client, model_name, mv.version)
    client.set_model_version_tag(model_name, mv.version, "bentoml_tag", tag)
    return tag


@dataclass(frozen=True)
class Registration:
    model_name: str
    version: str
    promoted: bool
    reason: str
    bento_tag: str | None


def register(
    client: MlflowClient,
    *,
    model_name: str,
    model_uri: str,
    run_id: str,
    tags: dict[str, str],
    promote: bool,
    reason: str,
) -> Registration:
    """Register a model version; if promoted, move `champion` to it and export it to BentoML.

    The alias moves first and moves back if the export fails, so no champion is left
    without its BentoML twin; a run killed in between is repaired by reconcile_champion.
    """
    mv = mlflow.register_model(model_uri, model_name, tags=tags)
    kill_point("after_register")
    version = str(mv.version)
    tag = bento_tag_for(model_name, version, run_id)
    client.set_model_version_tag(model_name, version, "bentoml_tag", tag)
    if not promote:
        client.set_model_version_tag(model_name, version, "promotion", f"rejected: {reason}")
        return Registration(model_name, version, False, reason, None)

    previous = champion_version(client, model_name)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    kill_point("after_alias")
    try:
        export_to_bentoml(client, model_name, version)
        kill_point("after_export")
    except BaseException:
        if previous is not None:
            client.set_registered_model_alias(model_name, CHAMPION, previous.version)
        else:
            client.delete_registered_model_alias(model_name, CHAMPION)
        client.set_model_version_tag(model_name, version, "promotion", "failed: BentoML export")
        raise
    client.set_model_version_tag(model_name, version, "promotion", f"promoted: {reason}")
    return Registration(model_name, version, True, reason, tag)
