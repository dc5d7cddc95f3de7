"""Candidate selection (README, Training): the candidate with the best mean CV score of the
selection metric is registered; for an error metric (RMSE) that is the LOWEST error.

Each run has three candidates of clearly different quality with the best one in the middle,
so picking the first, the last, the worst, or comparing negated errors fails a test.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from contract.spec import load_dataset_spec
from tests.conftest import small_config
from training.config import TrainingConfig
from training.data import load_dataset
from training.evaluate import LOWER_IS_BETTER
from training.pipelines import build_candidates
from training.train import run_training, split_data

QUIET = Console(quiet=True)

pytestmark = pytest.mark.slow  # full training runs per data set

CANDIDATES = {
    "regression": [
        {"name": "mean", "estimator": "sklearn.dummy.DummyRegressor",
         "params": {"strategy": "mean"}},
        {"name": "ridge", "estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}},
        {"name": "stiff_ridge", "estimator": "sklearn.linear_model.Ridge",
         "params": {"alpha": 300.0}},
    ],
    "binary": [
        {"name": "prior", "estimator": "sklearn.dummy.DummyClassifier",
         "params": {"strategy": "prior"}},
        {"name": "logistic", "estimator": "sklearn.linear_model.LogisticRegression",
         "params": {"max_iter": 5000}},
        {"name": "coin", "estimator": "sklearn.dummy.DummyClassifier",
         "params": {"strategy": "stratified"}},
    ],
}
BEST = {"regression": "ridge", "binary": "logistic"}


def _config(task: str) -> TrainingConfig:
    config = small_config().model_dump()
    config["candidates"][task] = CANDIDATES[task]
    return TrainingConfig.model_validate(config)


@pytest.mark.parametrize("name", ["diabetes", "breast_cancer"])
def test_the_best_candidate_by_cv_is_registered(stores, name: str) -> None:
    dataset = load_dataset(load_dataset_spec(name))
    spec = dataset.spec
    config = _config(spec.task)
    outcome = run_training(dataset, config, console=QUIET)
    metric = spec.selection_metric
    cv = {r.name: r.cv[metric][0] for r in outcome.results}

    # Errors are reported as errors (positive), scores as scores.
    for result in outcome.results:
        for m, (mean, std) in result.cv.items():
            assert std >= 0
            if m in LOWER_IS_BETTER:
                assert mean > 0, f"{result.name}: CV {m} {mean} is not an error"

    # The CV figure is the one scikit-learn computes for these folds.
    split = split_data(dataset, config)
    ridge = clone(build_candidates(spec, config)[1].pipeline)
    scorer = "neg_root_mean_squared_error" if metric == "rmse" else None
    if scorer:
        expected = -cross_val_score(ridge, split.X_train, split.y_train, cv=split.folds,
                                    scoring=scorer).mean()
        assert cv["ridge"] == pytest.approx(expected, rel=1e-9)
        # Predicting the mean is far worse than ridge: its error is about the target's spread.
        assert cv["mean"] == pytest.approx(np.std(split.y_train), rel=0.1)

    # The best by CV: the lowest RMSE, the highest ROC-AUC.
    assert outcome.best.name == BEST[spec.task], cv
    expected_best = (max if spec.higher_is_better else min)(cv, key=cv.get)
    assert outcome.best.name == expected_best

    # ... and it is what was registered.
    client = MlflowClient()
    assert client.get_run(outcome.parent_run_id).data.tags["best_candidate"] == outcome.best.name
    version = client.get_model_version(spec.model_name, outcome.registration.version)
    assert version.run_id == outcome.best.run_id
    assert version.tags["candidate"] == BEST[spec.task]
