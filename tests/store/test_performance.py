"""Online metrics equal scikit-learn's on the same rows (the expected values are computed
here from the arrays the test generated, not read back from the store)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sklearn import metrics

from store import Feedback, PredictionStore
from tests.store.conftest import T0, record, write_all


def _softmax(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    logits = rng.normal(size=(rows, columns))
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _store_classified(store: PredictionStore, classes: list[str], proba: np.ndarray,
                      actual: list[str], version: str = "1", start: int = 0) -> None:
    records = []
    for i, row in enumerate(proba):
        answer = {"prediction": classes[int(np.argmax(row))],
                  "probabilities": {c: float(p) for c, p in zip(classes, row, strict=True)}}
        records.append(record(start + i, version=version, answer=answer))
    write_all(store, records)
    store.feedback([Feedback(f"req-{start + i}", a) for i, a in enumerate(actual)])


def test_binary_classifier(store: PredictionStore) -> None:
    rng = np.random.default_rng(1)
    classes = ["benign", "malignant"]
    proba = _softmax(rng, 300, 2)
    actual = [classes[int(rng.random() < p)] for p in proba[:, 1]]
    _store_classified(store, classes, proba, actual)
    [got] = store.performance("m", classes=classes)
    y = np.array(actual)
    assert got.task == "classification" and got.labelled == 300
    assert got.metrics == pytest.approx({
        "accuracy": metrics.accuracy_score(y, np.array(classes)[proba.argmax(axis=1)]),
        "roc_auc": metrics.roc_auc_score(y == "malignant", proba[:, 1]),
        "log_loss": metrics.log_loss(y, proba, labels=classes),
    })


def test_multiclass_one_vs_rest_macro(store: PredictionStore) -> None:
    rng = np.random.default_rng(2)
    classes = ["setosa", "versicolor", "virginica"]
    proba = _softmax(rng, 200, 3)
    actual = [classes[rng.choice(3, p=row)] for row in proba]
    _store_classified(store, classes, proba, actual)
    [got] = store.performance("m")  # classes from the answers
    assert got.metrics == pytest.approx({
        "accuracy": metrics.accuracy_score(actual, np.array(classes)[proba.argmax(axis=1)]),
        "roc_auc": metrics.roc_auc_score(actual, proba, multi_class="ovr", average="macro"),
        "log_loss": metrics.log_loss(actual, proba),
    })


def test_one_class_present_has_no_roc_auc(store: PredictionStore) -> None:
    proba = _softmax(np.random.default_rng(3), 20, 2)
    _store_classified(store, ["no", "yes"], proba, ["yes"] * 20)
    [got] = store.performance("m")
    assert "roc_auc" not in got.metrics and "roc_auc" in got.skipped
    assert set(got.metrics) == {"accuracy", "log_loss"}


def test_regressor_window_and_versions(store: PredictionStore) -> None:
    rng = np.random.default_rng(4)
    predicted = rng.normal(150, 50, size=120)
    actual = predicted + rng.normal(0, 20, size=120)
    records = [record(i, version="2" if i >= 60 else "1", at=T0 + timedelta(seconds=i),
                      answer={"prediction": float(p)}) for i, p in enumerate(predicted)]
    records.append(record(500, version="2", answer={"prediction": 1.0}))  # no feedback
    write_all(store, records)
    store.feedback([Feedback(f"req-{i}", float(a)) for i, a in enumerate(actual)])

    by_version = {p.model_version: p for p in store.performance("m", window=50)}
    assert set(by_version) == {"1", "2"}
    assert list(by_version) == ["2", "1"]  # newest traffic first
    for version, rows in (("1", slice(10, 60)), ("2", slice(70, 120))):  # newest 50 each
        got = by_version[version]
        assert got.task == "regression" and got.labelled == 50
        assert got.metrics == pytest.approx({
            "rmse": metrics.root_mean_squared_error(actual[rows], predicted[rows]),
            "mae": metrics.mean_absolute_error(actual[rows], predicted[rows]),
            "r2": metrics.r2_score(actual[rows], predicted[rows]),
        })
    assert store.performance("m", model_version="1")[0].model_version == "1"
    assert store.performance("other") == []


def test_online_metrics_read_only_labelled_rows_through_their_index(tmp_path) -> None:
    """Every worker computes them every metrics_interval_s: a scan of every prediction of
    the model, labelled or not, took a quarter of a worker's CPU under load."""
    from sqlalchemy import event

    store = PredictionStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    write_all(store, [record(i) for i in range(200)])
    store.feedback([Feedback(f"req-{i}", "yes") for i in range(0, 200, 20)])
    plans: list[str] = []

    def explain(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append(" | ".join(str(r[-1]) for r in rows))

    event.listen(store.engine, "before_cursor_execute", explain)
    try:
        [got] = store.performance("m")
    finally:
        event.remove(store.engine, "before_cursor_execute", explain)
    assert got.labelled == 10
    assert len(plans) == 2, plans  # the versions, then the newest labelled rows of each
    assert all("ix_predictions_labelled" in plan and "SCAN predictions" not in plan
               for plan in plans), plans
    store.close()
