"""Consistency of the two registries when registration fails half-way."""

import bentoml
import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from contract.spec import load_dataset_spec
from tests.conftest import small_config
from training import registry
from training.data import load_dataset
from training.train import run_training

QUIET = Console(quiet=True)
NAME = "iris-classifier"

pytestmark = pytest.mark.slow  # full training runs (small_config) per test


def _train(**kwargs):
    dataset = load_dataset(load_dataset_spec("iris"))
    return run_training(dataset, small_config(), console=QUIET, **kwargs)


def test_failed_export_leaves_no_half_registered_champion(stores, monkeypatch) -> None:
    first = _train()

    # Failure injection: the BentoML export dies after the alias moved (a crash, a full disk).
    def broken_export(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(registry, "export_to_bentoml", broken_export)
    with pytest.raises(OSError, match="disk full"):
        _train(force_promote=True)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert str(champion.version) == first.registration.version  # the alias moved back
    failed = client.get_model_version(NAME, str(int(first.registration.version) + 1))
    assert failed.tags["promotion"] == "failed: BentoML export"
    assert not registry.in_bento_store(failed.tags["bentoml_tag"])

    monkeypatch.undo()
    # The CI tests' other data sets are not in this store: re-run recovers cleanly.
    again = _train(force_promote=True)
    assert again.registration.promoted
    assert registry.in_bento_store(again.registration.bento_tag)


def test_rerun_exports_a_champion_that_never_reached_bentoml(stores) -> None:
    outcome = _train()
    tag = outcome.registration.bento_tag
    # Simulate a run killed between moving the alias and the export: remove the twin.
    bentoml.models.delete(tag)
    assert not registry.in_bento_store(tag)
    again = _train()
    assert again.recovered == tag
    model = bentoml.models.get(tag)
    assert model.info.labels["mlflow_model_version"] == outcome.registration.version


def test_first_failed_export_leaves_no_alias(stores, monkeypatch) -> None:
    def broken_export(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "export_to_bentoml", broken_export)
    with pytest.raises(KeyboardInterrupt):
        _train()
    assert registry.champion_version(MlflowClient(), NAME) is None
