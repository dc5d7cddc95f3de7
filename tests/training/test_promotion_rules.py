"""The promotion gate's rules, fast (tests/training/test_promotion.py trains real candidates):
promotion_decision against a real champion in a temporary MLflow registry, registered once
per module, with new scores placed just above, at and below the champion's re-scored one.

One metric of each direction: ROC-AUC (breast_cancer, higher is better) and RMSE (diabetes,
lower is better). iris has no champion here (the first-champion case).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import pytest
from sklearn.base import clone

from contract.spec import load_dataset_spec
from tests.conftest import small_config
from training import registry
from training.candidate import CandidateResult, _untrusted_types
from training.config import TrainingConfig
from training.data import Dataset, load_dataset
from training.evaluate import selection_score
from training.pipelines import build_candidates
from training.promotion import promotion_decision
from training.split import Split, split_data

CONFIG = small_config()
# Loaded at import, outside any test: the data loading is not under test here, so mutmut
# (which runs, per mutant, the tests that call the mutated function) does not run these slow
# registry tests for every mutant of the data validation.
DATASETS = {name: load_dataset(load_dataset_spec(name))
            for name in ("breast_cancer", "diabetes", "iris")}


@dataclass
class Champion:
    dataset: Dataset
    split: Split
    model: object
    old: float  # the champion's score on split's hold-out rows
    step: float  # a clear difference in the metric (1% of the score)

    @property
    def metric(self) -> str:
        return self.dataset.spec.selection_metric

    def better(self, by: float) -> float:
        """A score `by` better than the champion's (lower for an error metric)."""
        return self.old + by if self.dataset.spec.higher_is_better else self.old - by


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("promotion-rules")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        yield path


def _crown(dataset: Dataset) -> tuple[Split, object]:
    """Fit the linear candidate and register it as champion (version 1)."""
    split = split_data(dataset, CONFIG)
    model = clone(build_candidates(dataset.spec, CONFIG)[0].pipeline).fit(
        split.X_train, split.y_train)
    name = dataset.spec.model_name
    client = registry.setup_mlflow(name)
    with mlflow.start_run(run_name="champion"):
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                        skops_trusted_types=_untrusted_types(model),
                                        pip_requirements=["scikit-learn"])
    version = mlflow.register_model(info.model_uri, name)
    client.set_registered_model_alias(name, registry.CHAMPION, version.version)
    return split, model


@pytest.fixture(scope="module", params=["breast_cancer", "diabetes"])
def champion(request, registry_dir: Path) -> Champion:
    dataset = DATASETS[request.param]
    split, model = _crown(dataset)
    old = selection_score(model, split.X_test, split.y_test, dataset.spec)
    return Champion(dataset, split, model, old, step=0.01 * abs(old))


def decide(c: Champion, new: float, *, margin: float = 0.0, force: bool = False,
           split: Split | None = None) -> tuple[bool, str]:
    config = TrainingConfig.model_validate(
        CONFIG.model_dump() | {"promotion": {"min_improvement": margin}})
    best = CandidateResult("new", "", "", {}, {}, {c.metric: new}, 0.0, None)
    client = registry.setup_mlflow(c.dataset.spec.model_name)
    return promotion_decision(client, c.dataset, split or c.split, best, config, force)


def test_a_better_score_is_promoted_and_the_reason_quotes_both(champion: Champion) -> None:
    new = champion.better(champion.step)
    assert decide(champion, new) == (
        True, f"hold-out {champion.metric} {new:.4f} beats champion version 1's "
              f"{champion.old:.4f} on the same rows")


@pytest.mark.parametrize("by", [-1.0, 0.0])  # worse, and a tie
def test_a_worse_or_equal_score_is_refused(champion: Champion, by: float) -> None:
    new = champion.better(by * champion.step)
    assert decide(champion, new) == (
        False, f"hold-out {champion.metric} {new:.4f} does not beat champion version 1's "
               f"{champion.old:.4f} on the same rows; the champion stays (use "
               "--force-promote to override)")


def test_the_margin_must_be_exceeded(champion: Champion) -> None:
    margin = 2 * champion.step
    promote, reason = decide(champion, champion.better(3 * champion.step), margin=margin)
    assert promote, reason
    for by in (1, 2):  # within the margin, and exactly the margin: not more than it
        promote, reason = decide(champion, champion.better(by * champion.step), margin=margin)
        assert not promote, reason
        assert reason.endswith(f" on the same rows by more than {margin}; the champion stays "
                               "(use --force-promote to override)")


def test_the_champion_is_scored_on_the_rows_given(champion: Champion) -> None:
    """Two halves of the hold-out score the champion differently; the gate quotes and uses
    the score on the rows it is given, not a stored figure."""
    s = champion.split
    half = len(s.X_test) // 2
    halves = [Split(s.X_train, X, s.y_train, y, s.folds)
              for X, y in ((s.X_test[:half], s.y_test[:half]),
                           (s.X_test[half:], s.y_test[half:]))]
    spec = champion.dataset.spec
    scores = [selection_score(champion.model, h.X_test, h.y_test, spec) for h in halves]
    assert abs(scores[0] - scores[1]) > 1e-3
    new = (scores[0] + scores[1]) / 2
    for h, score in zip(halves, scores, strict=True):
        promote, reason = decide(champion, new, split=h)
        assert f"champion version 1's {score:.4f} on the same rows" in reason
        assert promote == (new > score if spec.higher_is_better else new < score)


def test_force_promotes_even_a_worse_model(champion: Champion) -> None:
    assert decide(champion, champion.better(-10 * champion.step), force=True) == (
        True, "forced with --force-promote")


def test_a_champion_that_cannot_be_scored_is_kept_with_the_reason(champion: Champion) -> None:
    s = champion.split
    first = s.X_test.columns[0]
    broken = Split(s.X_train, s.X_test.drop(columns=first), s.y_train, s.y_test, s.folds)
    promote, reason = decide(champion, champion.better(champion.step), split=broken)
    assert not promote
    assert reason.startswith("the current champion (version 1) cannot be scored on this data (")
    assert reason.endswith("); use --force-promote to replace it")
    assert first in reason  # the error names what is wrong
    with pytest.raises(Exception) as error:  # whatever the model raises
        selection_score(champion.model, broken.X_test, broken.y_test, champion.dataset.spec)
    assert f"({type(error.value).__name__}: " in reason


def test_the_first_model_becomes_champion(registry_dir: Path) -> None:
    dataset = DATASETS["iris"]
    c = Champion(dataset, split_data(dataset, CONFIG), None, 0.0, 0.0)
    assert decide(c, 0.93333) == (True, "first champion (accuracy 0.9333)")
    assert decide(c, 0.5, force=True) == (True, "forced with --force-promote")
