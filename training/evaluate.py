"""Metrics (cross-validation scorers and hold-out metrics) and diagnostic plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: plots only go to files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.calibration import CalibrationDisplay
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer

from contract.spec import DatasetSpec


def _positive_auc(y_true: Any, y_score: Any, *, pos_label: str) -> float:
    return metrics.roc_auc_score(np.asarray(y_true) == pos_label, y_score)


def _positive_ap(y_true: Any, y_score: Any, *, pos_label: str) -> float:
    return metrics.average_precision_score(np.asarray(y_true) == pos_label, y_score)


def _positive_brier(y_true: Any, y_score: Any, *, pos_label: str) -> float:
    return metrics.brier_score_loss(np.asarray(y_true) == pos_label, y_score)


def cv_scorers(spec: DatasetSpec) -> dict[str, Any]:
    """Scorers for cross-validation, named like the hold-out metrics (errors are negated)."""
    if spec.task == "binary":
        pos = spec.target.positive_class
        proba = {"response_method": "predict_proba", "pos_label": pos}
        return {
            "roc_auc": make_scorer(_positive_auc, **proba),
            "pr_auc": make_scorer(_positive_ap, **proba),
            "accuracy": "accuracy",
            "precision": make_scorer(metrics.precision_score, pos_label=pos, zero_division=0),
            "recall": make_scorer(metrics.recall_score, pos_label=pos, zero_division=0),
            "f1": make_scorer(metrics.f1_score, pos_label=pos, zero_division=0),
            "log_loss": "neg_log_loss",
            "brier": make_scorer(_positive_brier, greater_is_better=False, **proba),
        }
    if spec.task == "multiclass":
        return {"accuracy": "accuracy", "f1_macro": "f1_macro", "roc_auc_ovr": "roc_auc_ovr"}
    return {"rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error", "r2": "r2"}


# Metrics where lower is better: sklearn scorers report them negated.
LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae"}


def positive_scores(model: Any, X: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    classes = list(model.classes_)
    return model.predict_proba(X)[:, classes.index(spec.target.positive_class)]


def holdout_metrics(
    model: Any, X: pd.DataFrame, y: pd.Series, spec: DatasetSpec
) -> dict[str, float]:
    """Every metric of the task on the hold-out rows."""
    if not spec.is_classifier:
        pred = model.predict(X)
        return {
            "rmse": float(metrics.root_mean_squared_error(y, pred)),
            "mae": float(metrics.mean_absolute_error(y, pred)),
            "r2": float(metrics.r2_score(y, pred)),
        }
    pred = model.predict(X)
    proba = model.predict_proba(X)
    if spec.task == "multiclass":
        return {
            "accuracy": float(metrics.accuracy_score(y, pred)),
            "f1_macro": float(metrics.f1_score(y, pred, average="macro")),
            "roc_auc_ovr": float(
                metrics.roc_auc_score(y, proba, multi_class="ovr", labels=list(model.classes_))
            ),
        }
    pos = spec.target.positive_class
    score = positive_scores(model, X, spec)
    truth = np.asarray(y) == pos
    return {
        "roc_auc": float(metrics.roc_auc_score(truth, score)),
        "pr_auc": float(metrics.average_precision_score(truth, score)),
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "precision": float(metrics.precision_score(y, pred, pos_label=pos, zero_division=0)),
        "recall": float(metrics.recall_score(y, pred, pos_label=pos, zero_division=0)),
        "f1": float(metrics.f1_score(y, pred, pos_label=pos, zero_division=0)),
        "log_loss": float(metrics.log_loss(y, proba, labels=list(model.classes_))),
        "brier": float(metrics.brier_score_loss(truth, score)),
    }


def selection_score(model: Any, X: pd.DataFrame, y: pd.Series, spec: DatasetSpec) -> float:
    return holdout_metrics(model, X, y, spec)[spec.selection_metric]


def is_better(new: float, old: float, spec: DatasetSpec, margin: float = 0.0) -> bool:
    return new > old + margin if spec.higher_is_better else new < old - margin


def save_plots(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    spec: DatasetSpec,
    out_dir: Path,
    *,
    seed: int,
    repeats: int,
    max_rows: int,
) -> list[Path]:
    """Diagnostic plots on the hold-out rows, written as PNG files; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: plt.Figure, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)

    if spec.task == "binary":
        score = positive_scores(model, X, spec)
        truth = np.asarray(y) == spec.target.positive_class
        fig, ax = plt.subplots(figsize=(5, 4))
        metrics.RocCurveDisplay.from_predictions(truth, score, ax=ax, name="hold-out")
        save(fig, "roc_curve.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        metrics.PrecisionRecallDisplay.from_predictions(truth, score, ax=ax, name="hold-out")
        save(fig, "pr_curve.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        CalibrationDisplay.from_predictions(truth, score, n_bins=10, ax=ax, name="hold-out")
        save(fig, "calibration_curve.png")
    if spec.is_classifier:
        fig, ax = plt.subplots(figsize=(5, 4))
        metrics.ConfusionMatrixDisplay.from_predictions(
            y, model.predict(X), labels=spec.target.classes, ax=ax, colorbar=False
        )
        save(fig, "confusion_matrix.png")
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        pred = model.predict(X)
        metrics.PredictionErrorDisplay.from_predictions(
            y, pred, kind="residual_vs_predicted", ax=axes[0]
        )
        metrics.PredictionErrorDisplay.from_predictions(
            y, pred, kind="actual_vs_predicted", ax=axes[1]
        )
        save(fig, "residuals.png")

    sample = X.sample(n=min(max_rows, len(X)), random_state=seed)
    importance = permutation_importance(
        model, sample, y.loc[sample.index], n_repeats=repeats, random_state=seed,
        scoring=cv_scorers(spec)[spec.selection_metric],
    )
    order = np.argsort(importance.importances_mean)
    fig, ax = plt.subplots(figsize=(6, max(3, 0.25 * len(order))))
    ax.barh(np.asarray(X.columns)[order], importance.importances_mean[order],
            xerr=importance.importances_std[order])
    ax.set_xlabel(f"drop in {spec.selection_metric} when the feature is shuffled")
    ax.set_title("Permutation importance (hold-out)")
    save(fig, "permutation_importance.png")
    return written

