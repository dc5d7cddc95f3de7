"""The promotion gate: a new model becomes champion only if its hold-out score beats the
current champion's, re-scored on the same hold-out rows, by more than the configured margin."""

from __future__ import annotations

from typing import Any

import mlflow.sklearn

from training import registry
from training.candidate import CandidateResult
from training.config import TrainingConfig
from training.data import Dataset
from training.evaluate import is_better, selection_score
from training.split import Split


def promotion_decision(
    client: Any, dataset: Dataset, split: Split, best: CandidateResult, config: TrainingConfig,
    force: bool,
) -> tuple[bool, str]:
    """Whether `best` may become champion: it must beat the champion on the same hold-out rows."""
    spec = dataset.spec
    metric = spec.selection_metric
    new = best.holdout[metric]
    current = registry.champion_version(client, spec.model_name)
    if force:
        return True, "forced with --force-promote"
    if current is None:
        return True, f"first champion ({metric} {new:.4f})"
    try:
        champion = mlflow.sklearn.load_model(f"models:/{spec.model_name}@{registry.CHAMPION}")
        old = selection_score(champion, split.X_test, split.y_test, spec)
    except Exception as exc:  # any failure means "not comparable", never a crash
        return False, (f"the current champion (version {current.version}) cannot be scored "
                       f"on this data ({type(exc).__name__}: {exc}); use --force-promote "
                       "to replace it")
    margin = config.promotion.min_improvement
    if is_better(new, old, spec, margin):
        return True, (f"hold-out {metric} {new:.4f} beats champion version {current.version}'s "
                      f"{old:.4f} on the same rows")
    return False, (f"hold-out {metric} {new:.4f} does not beat champion version "
                   f"{current.version}'s {old:.4f} on the same rows"
                   + (f" by more than {margin}" if margin else "")
                   + "; the champion stays (use --force-promote to override)")
