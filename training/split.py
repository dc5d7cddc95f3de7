"""The hold-out split and the CV folds every candidate shares, and the checks that the
validated data can be split at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from training.config import TrainingConfig
from training.data import Dataset


class TrainingDataError(ValueError):
    """Validated data that still cannot be trained on (too few rows or classes for the split)."""


@dataclass
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    folds: Any


def split_data(dataset: Dataset, config: TrainingConfig) -> Split:
    """One hold-out split and one set of CV folds, with fixed seeds, shared by all candidates."""
    spec, X, y = dataset.spec, dataset.features, dataset.target
    classify = spec.is_classifier
    if classify:
        counts = y.value_counts()
        if len(counts) < 2:
            raise TrainingDataError(
                f"{dataset.source}: the target has a single class ({counts.index[0]!r}); "
                "a classifier needs at least two"
            )
        # Each class needs a row in the hold-out set and in every training fold.
        needed = config.cv_folds + max(1, round(1 / config.test_size))
        rare = counts[counts < needed]
        if not rare.empty:
            raise TrainingDataError(
                f"{dataset.source}: class(es) {rare.to_dict()} have fewer than {needed} rows, "
                f"too few for a {config.test_size:.0%} hold-out and {config.cv_folds} CV folds; "
                "add data or lower cv_folds/test_size in the training config"
            )
    minimum = 2 * config.cv_folds + round(1 / config.test_size)
    if len(X) < minimum:
        raise TrainingDataError(
            f"{dataset.source}: {len(X)} rows are too few for {config.cv_folds} CV folds and a "
            f"{config.test_size:.0%} hold-out (need at least {minimum})"
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=config.test_size, random_state=config.seed,
        stratify=y if classify else None,
    )
    fold_class = StratifiedKFold if classify else KFold
    folds = fold_class(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    return Split(X_train, X_test, y_train, y_test, folds)
