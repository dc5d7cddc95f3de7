"""Promote, roll back and the challenger alias, against real MLflow and BentoML stores, and a
real `bentoml serve` after a rollback.

Each test trains a model under a name of its own (a copy of the iris spec), so the BentoML
store the session shares never sees another test's `NAME:latest`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import bentoml
import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient
from rich.console import Console

from contract.spec import load_dataset_spec
from tests.conftest import small_config
from tests.servers import serve_dataset
from training import lifecycle, registry
from training.cli import main as cli_main
from training.data import load_dataset
from training.lifecycle import LifecycleError, pushed, rollback_target
from training.train import run_training

ROOT = Path(__file__).resolve().parents[2]
QUIET = Console(quiet=True)


# --- the history stack, without stores ----------------------------------------------------

def test_rollback_walks_back_through_earlier_champions() -> None:
    history = pushed(pushed(pushed([], "1"), "2"), "3")
    assert history == ["1", "2", "3"] and pushed(history, "3") == history
    target, history = rollback_target(history, None)
    assert (target, history) == ("2", ["1", "2"])
    target, history = rollback_target(history, None)
    assert (target, history) == ("1", ["1"])  # not back to 3: a rollback never toggles
    with pytest.raises(LifecycleError, match="no earlier champion"):
        rollback_target(history, None)


def test_rollback_to_a_version_cuts_the_history_at_its_last_turn() -> None:
    assert rollback_target(["1", "2", "1", "3", "4"], "1") == ("1", ["1", "2", "1"])
    assert rollback_target(["1", "2", "3"], "1") == ("1", ["1"])
    with pytest.raises(LifecycleError, match=r"not an earlier champion.*promote --version 5"):
        rollback_target(["1", "2", "3"], "5")
    with pytest.raises(LifecycleError, match="not an earlier champion"):
        rollback_target(["1", "2", "3"], "3")  # the current champion


# --- real stores ----------------------------------------------------------------------------

@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    """The iris spec under a model name no other test uses."""
    raw = yaml.safe_load((ROOT / "configs" / "datasets" / "iris.yaml").read_text())
    raw["model_name"] = f"lifecycle-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "iris-lifecycle.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(spec_file: Path, **kwargs):
    config = kwargs.pop("config", small_config())
    dataset = load_dataset(load_dataset_spec(spec_file))
    return run_training(dataset, config, console=QUIET, **kwargs)


def _client() -> MlflowClient:
    """This test's store (MlflowClient() alone would use the URI an earlier test set)."""
    return MlflowClient(registry.tracking_uri(), registry.tracking_uri())


def _latest(name: str) -> str:
    return str(bentoml.models.get(f"{name}:latest").tag)


def _twin(client: MlflowClient, name: str, version: str) -> str:
    return client.get_model_version(name, version).tags["bentoml_tag"]


def _register(client: MlflowClient, outcome, name: str) -> str:
    """Another champion version from the same trained model, as training registers one."""
    registration = registry.register(
        client, model_name=name, model_uri=outcome.best.model_uri, run_id=outcome.best.run_id,
        tags={}, promote=True, reason="test")
    lifecycle.record_training_promotion(client, name, registration.version, "test")
    return registration.version


@pytest.mark.slow
def test_promote_then_rollback_end_to_end(stores, spec_file, tmp_path, capsys) -> None:
    name = load_dataset_spec(spec_file).model_name
    client = _client()
    first = _train(spec_file)
    assert first.registration.promoted and first.challenger is None
    # Same data, same seeds: the second model does not beat the first, so it becomes the
    # challenger (promotion.challenger_on_reject), exported, while NAME:latest stays.
    second = _train(spec_file)
    assert not second.registration.promoted and second.challenger == "2"
    assert lifecycle.alias_version(client, name, "challenger") == "2"
    assert registry.in_bento_store(_twin(client, name, "2"))
    assert _latest(name) == _twin(client, name, "1")

    assert cli_main(["promote", "--model", name, "--version", "2", "--by", "alice",
                     "--reason", "challenger won the canary"]) == 0
    out = capsys.readouterr().out
    assert f"promoted: {name} version 2 is champion (was version 1)" in out
    assert "recorded on version 2: by alice" in out and "restart it" in out
    assert lifecycle.alias_version(client, name, "champion") == "2"
    assert lifecycle.alias_version(client, name, "challenger") is None  # no longer one
    assert _latest(name) == _twin(client, name, "2")
    tags = client.get_model_version(name, "2").tags
    assert tags["champion.action"] == "promote" and tags["champion.by"] == "alice"
    assert tags["champion.reason"] == "challenger won the canary"
    assert tags["previous_champion"] == "1" and tags["champion.at"].startswith("20")
    assert client.get_registered_model(name).tags["champion_history"] == "1,2"

    # The rollback as an operator runs it: the CLI in a process of its own.
    env = os.environ | {"MLFLOW_TRACKING_URI": registry.tracking_uri(), "USER": "oncall",
                        "LOGNAME": "oncall"}
    result = subprocess.run(
        [sys.executable, "-m", "training", "rollback", "--model", name, "--reason", "p99 up"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rolled back to: {name} version 1 is champion (was version 2)" in result.stdout
    assert "rollout undo" in result.stdout
    assert lifecycle.alias_version(client, name, "champion") == "1"
    assert _latest(name) == _twin(client, name, "1")
    assert client.get_model_version(name, "1").tags["champion.by"] == "oncall"
    demoted = client.get_model_version(name, "2").tags
    assert demoted["rolled_back.to"] == "1" and demoted["rolled_back.reason"] == "p99 up"
    assert client.get_registered_model(name).tags["champion_history"] == "1"

    # A fresh `bentoml serve` of the model name serves the rolled-back version.
    with contextlib.contextmanager(serve_dataset)(tmp_path / "serve", str(spec_file)) as server:
        info = httpx.get(f"{server.url}/model_info", timeout=30).json()
        assert info["mlflow_model_version"] == "1"
        assert info["bentoml_tag"] == _twin(client, name, "1")
        record = server.dataset.features.iloc[0].to_dict()
        answer = httpx.post(f"{server.url}/predict", json=record, timeout=30).json()
        assert answer["model_version"] == _twin(client, name, "1").split(":")[1]


@pytest.mark.slow
def test_challenger_alias_missing_twin_failed_export_and_repeated_rollbacks(
        stores, spec_file, monkeypatch) -> None:
    name = load_dataset_spec(spec_file).model_name
    client = _client()
    # --alias challenger with no champion yet: registered, not exported (it would become
    # NAME:latest), and promote exports it.
    first = _train(spec_file, alias="challenger")
    assert not first.registration.promoted and first.challenger == "1"
    assert registry.champion_version(client, name) is None
    assert not registry.in_bento_store(_twin(client, name, "1"))
    change = lifecycle.promote(client, name, "1", reason="first")
    assert change.exported and _latest(name) == _twin(client, name, "1")

    # challenger_on_reject off: a losing version gets no alias and no twin.
    config = small_config(promotion={"min_improvement": 0.0, "challenger_on_reject": False})
    second = _train(spec_file, config=config)
    assert not second.registration.promoted and second.challenger is None
    assert lifecycle.alias_version(client, name, "challenger") is None
    assert not registry.in_bento_store(_twin(client, name, "2"))

    # A failed export during promote moves the alias and NAME:latest back.
    def broken_export(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(registry, "export_to_bentoml", broken_export)
    with pytest.raises(OSError, match="disk full"):
        lifecycle.promote(client, name, "2")
    monkeypatch.undo()
    assert lifecycle.alias_version(client, name, "champion") == "1"
    assert _latest(name) == _twin(client, name, "1")
    assert "champion.action" not in client.get_model_version(name, "2").tags

    v3, v4 = _register(client, first, name), _register(client, first, name)
    assert lifecycle.history(client, name) == ["1", v3, v4]
    assert lifecycle.rollback(client, name).version == v3
    assert _latest(name) == _twin(client, name, v3)
    assert lifecycle.rollback(client, name).version == "1"  # further back, not to v4
    assert _latest(name) == _twin(client, name, "1")
    with pytest.raises(LifecycleError, match="no earlier champion"):
        lifecycle.rollback(client, name)

    lifecycle.promote(client, name, v4)
    with pytest.raises(LifecycleError, match=f"version {v3} is not an earlier champion"):
        lifecycle.rollback(client, name, to_version=v3)  # rolled back from: promote it instead
    assert lifecycle.rollback(client, name, to_version="1").previous == v4
    assert _latest(name) == _twin(client, name, "1")

    # A registry from before the history tag: seeded from the versions training promoted.
    client.delete_registered_model_tag(name, "champion_history")
    assert lifecycle.history(client, name) == ["1", v3, v4, "1"]
