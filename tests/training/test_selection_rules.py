"""What candidate selection and the promotion gate compare, fast (tests/training/
test_selection.py runs whole trainings): the CV scorers agree with the hold-out metrics, with
error metrics negated exactly where LOWER_IS_BETTER says (training/candidate.py flips those
back, and the best-by-CV pick and the gate rely on it); each hold-out metric is the one
scikit-learn computes for the positive class; is_better compares in the metric's direction
with the margin.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from contract.spec import DatasetSpec, load_dataset_spec
from tests.conftest import small_config
from training.data import load_dataset
from training.evaluate import (
    LOWER_IS_BETTER,
    cv_scorers,
    holdout_metrics,
    is_better,
    positive_scores,
    selection_score,
)
from training.pipelines import build_candidates
from training.split import Split, split_data

CONFIG = small_config()
# Loaded at import, outside any test: mutants of the data loading need not run these tests.
DATASETS = {name: load_dataset(load_dataset_spec(name))
            for name in ("breast_cancer", "iris", "diabetes")}


def _fitted(name: str) -> tuple[DatasetSpec, Split, object]:
    dataset = DATASETS[name]
    split = split_data(dataset, CONFIG)
    model = clone(build_candidates(dataset.spec, CONFIG)[0].pipeline)
    return dataset.spec, split, model.fit(split.X_train, split.y_train)


@pytest.fixture(scope="module", params=["breast_cancer", "iris", "diabetes"])
def fitted(request) -> tuple[DatasetSpec, Split, object]:
    return _fitted(request.param)


def test_cv_scorers_are_the_hold_out_metrics_with_errors_negated(fitted) -> None:
    spec, split, model = fitted
    holdout = holdout_metrics(model, split.X_test, split.y_test, spec)
    scorers = cv_scorers(spec)
    assert set(scorers) <= set(holdout)
    assert spec.selection_metric in scorers
    for name, scorer in scorers.items():
        scored = metrics.get_scorer(scorer)(model, split.X_test, split.y_test)
        sign = -1.0 if name in LOWER_IS_BETTER else 1.0
        assert sign * scored == pytest.approx(holdout[name], rel=1e-9, abs=1e-12), name
    # Errors are positive, so "lower is better" is literally lower.
    for name in set(holdout) & LOWER_IS_BETTER:
        assert holdout[name] > 0, name


def test_binary_hold_out_metrics_are_for_the_positive_class() -> None:
    spec, split, model = _fitted("breast_cancer")
    pos = spec.target.positive_class
    assert pos == "malignant" and list(model.classes_) == ["benign", "malignant"]
    proba = model.predict_proba(split.X_test)
    score = positive_scores(model, split.X_test, spec)
    np.testing.assert_array_equal(score, proba[:, list(model.classes_).index(pos)])
    truth = split.y_test.to_numpy() == pos
    pred = model.predict(split.X_test)
    expected = {
        "roc_auc": metrics.roc_auc_score(truth, score),
        "pr_auc": metrics.average_precision_score(truth, score),
        "accuracy": metrics.accuracy_score(split.y_test, pred),
        "precision": metrics.precision_score(truth, pred == pos),
        "recall": metrics.recall_score(truth, pred == pos),
        "f1": metrics.f1_score(truth, pred == pos),
        "log_loss": metrics.log_loss(truth, score),
        "brier": metrics.brier_score_loss(truth, score),
    }
    got = holdout_metrics(model, split.X_test, split.y_test, spec)
    assert got == pytest.approx(expected, rel=1e-9)
    # The positive class matters: scored for "benign" the ranking metrics are mirrored.
    assert got["roc_auc"] == pytest.approx(1 - metrics.roc_auc_score(~truth, score))
    assert selection_score(model, split.X_test, split.y_test, spec) == got["roc_auc"]


def test_undefined_precision_recall_and_f1_are_zero_without_warnings() -> None:
    """A fold where nothing is predicted positive, or with no positive rows, scores 0 (never
    a perfect 1), silently: CV over many settings would print a warning per fold."""
    spec, split, _ = _fitted("breast_cancer")
    never = DummyClassifier(strategy="constant", constant="benign").fit(
        split.X_train, split.y_train)
    negatives = split.y_test != spec.target.positive_class
    scorers = cv_scorers(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = holdout_metrics(never, split.X_test, split.y_test, spec)
        assert got["precision"] == got["recall"] == got["f1"] == 0.0
        for name in ("precision", "recall", "f1"):
            scorer = metrics.get_scorer(scorers[name])
            assert scorer(never, split.X_test, split.y_test) == 0.0, name
            assert scorer(never, split.X_test[negatives], split.y_test[negatives]) == 0.0, name


def test_multiclass_and_regression_hold_out_metrics() -> None:
    spec, split, model = _fitted("iris")
    pred = model.predict(split.X_test)
    assert holdout_metrics(model, split.X_test, split.y_test, spec) == pytest.approx({
        "accuracy": metrics.accuracy_score(split.y_test, pred),
        "f1_macro": metrics.f1_score(split.y_test, pred, average="macro"),
        "roc_auc_ovr": metrics.roc_auc_score(split.y_test, model.predict_proba(split.X_test),
                                             multi_class="ovr"),
    })
    spec, split, model = _fitted("diabetes")
    pred = model.predict(split.X_test)
    assert holdout_metrics(model, split.X_test, split.y_test, spec) == pytest.approx({
        "rmse": metrics.root_mean_squared_error(split.y_test, pred),
        "mae": metrics.mean_absolute_error(split.y_test, pred),
        "r2": metrics.r2_score(split.y_test, pred),
    })
    assert selection_score(model, split.X_test, split.y_test, spec) == pytest.approx(
        metrics.root_mean_squared_error(split.y_test, pred))


@pytest.mark.parametrize(("name", "new", "old", "margin", "better"), [
    ("breast_cancer", 0.95, 0.90, 0.0, True),   # ROC-AUC: higher is better
    ("breast_cancer", 0.90, 0.95, 0.0, False),
    ("breast_cancer", 0.90, 0.90, 0.0, False),  # a tie is not better
    ("breast_cancer", 0.95, 0.90, 0.04, True),
    ("breast_cancer", 0.95, 0.90, 0.06, False),
    ("breast_cancer", 0.95, 0.90, 0.05 + 1e-9, False),
    ("diabetes", 50.0, 55.0, 0.0, True),        # RMSE: lower is better
    ("diabetes", 55.0, 50.0, 0.0, False),
    ("diabetes", 50.0, 50.0, 0.0, False),
    ("diabetes", 50.0, 55.0, 4.0, True),
    ("diabetes", 50.0, 55.0, 6.0, False),
    ("diabetes", 50.0, 55.0, 5.0, False),       # exactly the margin is not more than it
])
def test_is_better_in_the_metric_s_direction_by_more_than_the_margin(
        name: str, new: float, old: float, margin: float, better: bool) -> None:
    assert is_better(new, old, DATASETS[name].spec, margin) is better


def test_is_better_without_a_margin_is_a_strict_comparison() -> None:
    spec = DATASETS["diabetes"].spec
    assert is_better(49.999, 50.0, spec) and not is_better(50.0, 50.0, spec)


def test_a_hold_out_without_one_class_scores_instead_of_crashing() -> None:
    """Rows missing a class (a small re-scored hold-out): OvR ROC-AUC is undefined (NaN),
    the other metrics are computed; the model's classes, not the rows', set the columns."""
    spec, split, model = _fitted("iris")
    rows = split.y_test != split.y_test.iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that ROC-AUC is undefined
        got = holdout_metrics(model, split.X_test[rows], split.y_test[rows], spec)
    assert np.isnan(got["roc_auc_ovr"])
    assert got["accuracy"] == metrics.accuracy_score(split.y_test[rows],
                                                     model.predict(split.X_test[rows]))
