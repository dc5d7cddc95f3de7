"""End to end: real training into temporary MLflow and BentoML stores."""

import bentoml
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from contract.spec import load_dataset_spec
from tests.conftest import small_config
from training.data import load_dataset
from training.train import TrainingDataError, run_training, split_data

QUIET = Console(quiet=True)


def _train(name: str, **kwargs):
    dataset = load_dataset(load_dataset_spec(name))
    return dataset, run_training(dataset, small_config(), console=QUIET, **kwargs)


@pytest.mark.slow  # full training runs
def test_binary_training_tracks_and_registers_in_both_stores(stores) -> None:
    dataset, outcome = _train("breast_cancer")
    client = MlflowClient()
    name = "breast-cancer-classifier"

    # MLflow: one parent run, one nested run per candidate, with metrics, plots and model.
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags["git_commit"] and "version.scikit-learn" in parent.data.tags
    assert parent.inputs.dataset_inputs[0].dataset.digest == dataset.digest
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'",
    )
    assert {r.data.tags["candidate"] for r in children} == {r.name for r in outcome.results}
    for run in children:
        for metric in ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss",
                       "brier"):
            assert f"holdout_{metric}" in run.data.metrics
            assert f"cv_{metric}_mean" in run.data.metrics
        plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
        assert {"plots/roc_curve.png", "plots/pr_curve.png", "plots/confusion_matrix.png",
                "plots/calibration_curve.png", "plots/permutation_importance.png"} <= plots

    # MLflow registry: champion alias on the registered version, which names its BentoML twin.
    champion = client.get_model_version_by_alias(name, "champion")
    assert str(champion.version) == outcome.registration.version
    assert champion.run_id == outcome.best.run_id
    bento_tag = champion.tags["bentoml_tag"]
    assert bento_tag == outcome.registration.bento_tag

    # BentoML: same pipeline, linked back, with what serving and monitoring need.
    model = bentoml.models.get(bento_tag)
    assert model.info.labels["mlflow_model_version"] == str(champion.version)
    assert model.info.labels["mlflow_run_id"] == champion.run_id
    assert model.info.labels["mlflow_alias"] == "champion"
    meta = model.info.metadata
    assert meta["task"] == "binary" and meta["classes"] == ["benign", "malignant"]
    assert meta["spec"]["features"][0]["name"] == "mean_radius"
    assert meta["holdout_metrics"]["roc_auc"] == pytest.approx(outcome.best.holdout["roc_auc"])
    reference = model.custom_objects["reference_sample"]
    assert list(reference.columns) == [*dataset.spec.feature_names, "target"]
    assert len(reference) == 50

    # The two registrations predict the same on the same rows.
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    pipeline = bentoml.sklearn.load_model(bento_tag)
    rows = dataset.features.sample(100, random_state=0)
    assert (pyfunc.predict(rows) == pipeline.predict(rows)).all()
    assert np.allclose(pipeline.predict_proba(rows),
                       mlflow.sklearn.load_model(f"models:/{name}@champion").predict_proba(rows))


@pytest.mark.parametrize(("name", "metrics"), [
    ("iris", {"accuracy", "f1_macro", "roc_auc_ovr"}),
    ("diabetes", {"rmse", "mae", "r2"}),
])
@pytest.mark.slow  # full training runs
def test_multiclass_and_regression_train_and_register(stores, name, metrics) -> None:
    _, outcome = _train(name)
    assert set(outcome.best.holdout) == metrics
    assert outcome.registration.promoted
    model = bentoml.models.get(outcome.registration.bento_tag)
    assert model.info.metadata["task"] == load_dataset_spec(name).task


@pytest.mark.slow  # full training runs
def test_same_data_again_does_not_replace_the_champion(stores) -> None:
    _, first = _train("iris")
    _, second = _train("iris")
    client = MlflowClient()
    assert not second.registration.promoted
    assert "does not beat" in second.registration.reason
    assert str(client.get_model_version_by_alias("iris-classifier", "champion").version) == \
        first.registration.version
    assert client.get_model_version("iris-classifier", second.registration.version).tags[
        "promotion"].startswith("rejected")
    _, forced = _train("iris", force_promote=True)
    assert forced.registration.promoted
    assert str(client.get_model_version_by_alias("iris-classifier", "champion").version) == \
        forced.registration.version


def test_too_few_rows_for_the_folds_is_refused_before_training() -> None:
    dataset = load_dataset(load_dataset_spec("iris"))
    tiny = type(dataset)(dataset.spec, dataset.features.iloc[::15], dataset.target.iloc[::15],
                         "tiny.csv")
    with pytest.raises(TrainingDataError, match=r"tiny\.csv.*fewer than"):
        split_data(tiny, small_config())


def test_single_class_target_is_refused() -> None:
    dataset = load_dataset(load_dataset_spec("iris"))
    only = dataset.target == "setosa"
    single = type(dataset)(dataset.spec, dataset.features[only], dataset.target[only], "one.csv")
    with pytest.raises(TrainingDataError, match="single class"):
        split_data(single, small_config())
