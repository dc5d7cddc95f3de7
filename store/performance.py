"""Online performance: the model's answers against the ground truth sent as feedback, over
the newest `window` labelled predictions of each model version, with scikit-learn's
metrics (the same functions training reports its hold-out metrics with)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from store.models import predictions


@dataclass(frozen=True)
class VersionPerformance:
    model_name: str
    model_version: str
    task: str  # "classification" or "regression"
    labelled: int  # rows in the window
    first: str | None  # prediction times (ISO 8601) of the window's oldest and newest rows
    last: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it is missing

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def performance(engine: Engine, model_name: str, *, window: int = 1000,
                model_version: str | None = None,
                classes: list[str] | None = None) -> list[VersionPerformance]:
    """One entry per model version with labelled predictions, newest version data first.
    `classes` (the spec's class order) fixes the probability columns; by default the
    labels seen in the answers' probabilities, sorted."""
    if window < 1:
        raise ValueError("window must be at least 1")
    labelled = predictions.c.feedback_at.is_not(None)
    with engine.connect() as connection:
        versions_query = (select(predictions.c.model_version,
                                 func.max(predictions.c.timestamp).label("newest"))
                          .where(predictions.c.model_name == model_name, labelled)
                          .group_by(predictions.c.model_version))
        if model_version is not None:
            versions_query = versions_query.where(predictions.c.model_version == model_version)
        versions = connection.execute(versions_query).all()
        out = []
        for version, _newest in sorted(versions, key=lambda v: v.newest, reverse=True):
            rows = connection.execute(
                select(predictions.c.timestamp, predictions.c.answer, predictions.c.actual)
                .where(predictions.c.model_name == model_name,
                       predictions.c.model_version == version, labelled)
                .order_by(predictions.c.timestamp.desc(), predictions.c.id.desc())
                .limit(window)).all()
            out.append(_score(model_name, version, rows, classes))
    return out


def _score(model_name: str, version: str, rows: list[Any],
           classes: list[str] | None) -> VersionPerformance:
    answers = [row.answer for row in rows]
    actual = [row.actual for row in rows]
    times = [row.timestamp for row in rows]
    common = {"model_name": model_name, "model_version": version, "labelled": len(rows),
              "first": min(times).isoformat(), "last": max(times).isoformat()}
    if any("probabilities" in answer for answer in answers):
        found, skipped = classification_metrics(actual, answers, classes)
        return VersionPerformance(task="classification", metrics=found, skipped=skipped,
                                  **common)
    found, skipped = regression_metrics([float(a) for a in actual],
                                        [float(answer["prediction"]) for answer in answers])
    return VersionPerformance(task="regression", metrics=found, skipped=skipped, **common)


def classification_metrics(actual: list[Any], answers: list[dict[str, Any]],
                           classes: list[str] | None = None
                           ) -> tuple[dict[str, float], dict[str, str]]:
    classes = classes or sorted({c for answer in answers for c in answer["probabilities"]})
    y_true = [str(a) for a in actual]
    y_pred = [str(answer["prediction"]) for answer in answers]
    # Probability columns in class order; a class an answer lacks had probability 0.
    proba = np.array([[float(answer["probabilities"].get(c, 0.0)) for c in classes]
                      for answer in answers])
    found = {"accuracy": float(metrics.accuracy_score(y_true, y_pred))}
    skipped: dict[str, str] = {}
    unknown = set(y_true) - set(classes)
    present = [c for c in classes if c in set(y_true)]
    if unknown:
        skipped["roc_auc"] = skipped["log_loss"] = f"actual labels not among classes: {unknown}"
        return found, skipped
    if len(present) < 2:
        skipped["roc_auc"] = "needs at least two classes among the labelled predictions"
    elif len(classes) == 2:
        found["roc_auc"] = float(metrics.roc_auc_score(
            [y == classes[1] for y in y_true], proba[:, 1]))
    elif len(present) == len(classes):
        found["roc_auc"] = float(metrics.roc_auc_score(
            y_true, proba, multi_class="ovr", average="macro", labels=classes))
    else:
        # Some classes never occurred: one-vs-rest AUC of each class that did, averaged
        # (what multi_class="ovr" computes when every class is present).
        found["roc_auc"] = float(np.mean([metrics.roc_auc_score(
            [y == c for y in y_true], proba[:, classes.index(c)]) for c in present]))
    found["log_loss"] = float(metrics.log_loss(y_true, proba, labels=classes))
    return found, skipped


def regression_metrics(actual: list[float], predicted: list[float]
                       ) -> tuple[dict[str, float], dict[str, str]]:
    found = {
        "rmse": float(metrics.root_mean_squared_error(actual, predicted)),
        "mae": float(metrics.mean_absolute_error(actual, predicted)),
    }
    skipped: dict[str, str] = {}
    if len(actual) >= 2 and len(set(actual)) > 1:
        found["r2"] = float(metrics.r2_score(actual, predicted))
    else:
        skipped["r2"] = "needs at least two different actual values"
    return found, skipped
