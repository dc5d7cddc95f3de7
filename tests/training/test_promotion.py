"""The promotion gate (README, Training): the alias `champion` moves to a new model only if
its hold-out score beats the champion's, re-scored on the same hold-out rows, by more than
`promotion.min_improvement`; for an error metric (RMSE) lower is better.

The decision function is called with real fitted pipelines and a real champion in a
temporary MLflow registry; the last test runs the whole training three times. Each case is
built so that an inverted comparison, an ignored margin, or the champion's stored metric
used instead of re-scoring it, fails at least one test.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import bentoml
import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console
from sklearn.base import clone

from contract.spec import load_dataset_spec
from tests.conftest import small_config
from training import registry
from training.config import TrainingConfig
from training.data import Dataset, load_dataset
from training.evaluate import holdout_metrics, selection_score
from training.pipelines import build_candidates
from training.train import (
    CandidateResult,
    Split,
    _pip_requirements,
    _untrusted_types,
    promotion_decision,
    run_training,
    split_data,
)

# One metric of each direction: ROC-AUC (higher is better), RMSE (lower is better).
DATASETS = ["breast_cancer", "diabetes"]
CHAMPION_SCORE = re.compile(r"champion version (\d+)'s (-?\d+\.\d+)")

pytestmark = pytest.mark.slow  # registers real champions; the last test trains three times


@dataclass
class Fitted:
    model: object
    holdout: dict[str, float]


@dataclass
class Case:
    dataset: Dataset
    config: TrainingConfig
    split: Split
    good: Fitted  # the linear candidate fitted on the training rows
    weak: Fitted  # the same pipeline fitted on the same rows with the targets shuffled

    @property
    def metric(self) -> str:
        return self.dataset.spec.selection_metric

    def gain(self, new: Fitted, old: Fitted) -> float:
        """How much better `new` is than `old` on the hold-out (positive: better)."""
        delta = new.holdout[self.metric] - old.holdout[self.metric]
        return delta if self.dataset.spec.higher_is_better else -delta


def _fit(dataset: Dataset, config: TrainingConfig, split: Split, y: pd.Series) -> Fitted:
    model = clone(build_candidates(dataset.spec, config)[0].pipeline).fit(split.X_train, y)
    return Fitted(model, holdout_metrics(model, split.X_test, split.y_test, dataset.spec))


@pytest.fixture(scope="module", params=DATASETS)
def case(request) -> Case:
    dataset = load_dataset(load_dataset_spec(request.param))
    config = small_config()
    split = split_data(dataset, config)
    shuffled = pd.Series(split.y_train.sample(frac=1.0, random_state=0).to_numpy(),
                         index=split.y_train.index)
    built = Case(dataset, config, split, good=_fit(dataset, config, split, split.y_train),
                 weak=_fit(dataset, config, split, shuffled))
    # The cases below need a clear difference between the two models.
    assert built.gain(built.good, built.weak) > 0.1 * abs(built.good.holdout[built.metric])
    return built


def crown(dataset: Dataset, model: object, stored: dict[str, float]) -> str:
    """Register `model` with alias champion, its hold-out metrics `stored` recorded where
    training records them (run metrics and version tags); returns the version."""
    client = registry.setup_mlflow(dataset.spec.model_name)
    example = dataset.features.head(5)
    with mlflow.start_run(run_name="champion"):
        mlflow.log_metrics({f"holdout_{m}": v for m, v in stored.items()})
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=example, serialization_format="skops",
            skops_trusted_types=_untrusted_types(model), pip_requirements=_pip_requirements())
    version = mlflow.register_model(info.model_uri, dataset.spec.model_name,
                                    tags={f"holdout_{m}": f"{v:.6f}" for m, v in stored.items()})
    client.set_registered_model_alias(dataset.spec.model_name, registry.CHAMPION,
                                      version.version)
    return str(version.version)


def decide(case: Case, new_score: float, *, margin: float = 0.0) -> tuple[bool, str]:
    """The gate's decision for a new model whose hold-out score is `new_score`."""
    config = TrainingConfig.model_validate(
        case.config.model_dump() | {"promotion": {"min_improvement": margin}})
    best = CandidateResult("new", "", "", {}, {}, {case.metric: new_score}, 0.0, None)
    client = MlflowClient()
    return promotion_decision(client, case.dataset, case.split, best, config, force=False)


def champion_score_in(reason: str) -> float:
    found = CHAMPION_SCORE.search(reason)
    assert found, f"the reason names no champion score: {reason}"
    return float(found.group(2))


def test_a_better_model_is_promoted_without_force(stores, case: Case) -> None:
    crown(case.dataset, case.weak.model, case.weak.holdout)
    promote, reason = decide(case, case.good.holdout[case.metric])
    assert promote, reason
    assert f"beats champion version 1's {case.weak.holdout[case.metric]:.4f}" in reason


def test_a_worse_model_is_refused_and_the_reason_says_why(stores, case: Case) -> None:
    crown(case.dataset, case.good.model, case.good.holdout)
    promote, reason = decide(case, case.weak.holdout[case.metric])
    assert not promote, reason
    assert (f"hold-out {case.metric} {case.weak.holdout[case.metric]:.4f} does not beat "
            f"champion version 1's {case.good.holdout[case.metric]:.4f} on the same rows") \
        in reason
    assert "the champion stays" in reason and "--force-promote" in reason
    assert str(MlflowClient().get_model_version_by_alias(
        case.dataset.spec.model_name, "champion").version) == "1"


def test_the_margin_is_honoured(stores, case: Case) -> None:
    crown(case.dataset, case.weak.model, case.weak.holdout)
    gain = case.gain(case.good, case.weak)
    new = case.good.holdout[case.metric]
    promote, reason = decide(case, new, margin=0.5 * gain)  # gain above the margin
    assert promote, reason
    promote, reason = decide(case, new, margin=1.5 * gain)  # gain below the margin
    assert not promote, reason
    assert f"by more than {1.5 * gain}" in reason


def test_the_champion_is_rescored_on_the_same_hold_out_rows(stores, case: Case) -> None:
    """The champion's recorded score was measured on other rows (another seed's hold-out,
    as after a data refresh): the gate must use the champion's score on these rows."""
    other = split_data(case.dataset, case.config.model_copy(update={"seed": 7}))
    champion = clone(case.good.model).fit(other.X_train, other.y_train)
    stored = holdout_metrics(champion, other.X_test, other.y_test, case.dataset.spec)
    crown(case.dataset, champion, stored)
    rescored = selection_score(champion, case.split.X_test, case.split.y_test,
                               case.dataset.spec)
    assert abs(rescored - stored[case.metric]) > 1e-3, "the two hold-outs must score apart"

    # A new score half-way between: the decision depends on which champion score is used.
    new = (rescored + stored[case.metric]) / 2
    promote, reason = decide(case, new)
    assert champion_score_in(reason) == pytest.approx(rescored, abs=5e-5)
    new_wins = new > rescored if case.dataset.spec.higher_is_better else new < rescored
    assert promote == new_wins, reason


def _weak_config() -> TrainingConfig:
    """Only a heavily regularised ridge: close to predicting the mean."""
    config = small_config().model_dump()
    config["candidates"]["regression"] = [{
        "name": "ridge", "estimator": "sklearn.linear_model.Ridge",
        "params": {"alpha": 10000.0}, "search": {}}]
    return TrainingConfig.model_validate(config)


def test_training_promotes_a_better_model_and_refuses_a_worse_one(stores) -> None:
    """End to end on diabetes (RMSE, lower is better), without --force-promote."""
    dataset = load_dataset(load_dataset_spec("diabetes"))
    name = dataset.spec.model_name

    def train(config: TrainingConfig):
        out = io.StringIO()
        outcome = run_training(dataset, config, console=Console(file=out, width=400))
        return outcome, out.getvalue()

    weak, _ = train(_weak_config())
    assert weak.registration.promoted  # the first champion
    client = MlflowClient()  # after training pointed MLflow at this test's store

    better, output = train(small_config())
    assert better.registration.promoted, output
    assert better.best.holdout["rmse"] < weak.best.holdout["rmse"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == \
        better.registration.version
    assert registry.in_bento_store(better.registration.bento_tag)
    assert bentoml.models.get(f"{name}:latest").tag == \
        bentoml.models.get(better.registration.bento_tag).tag
    # The reason quotes the old champion re-scored on this run's hold-out rows.
    split = split_data(dataset, small_config())
    old = mlflow.sklearn.load_model(f"models:/{name}/{weak.registration.version}")
    assert champion_score_in(better.registration.reason) == \
        pytest.approx(selection_score(old, split.X_test, split.y_test, dataset.spec), abs=5e-5)
    assert "champion" in output and "beats" in output

    worse, output = train(_weak_config())
    assert not worse.registration.promoted
    assert str(client.get_model_version_by_alias(name, "champion").version) == \
        better.registration.version
    assert "not promoted" in output
    assert (f"does not beat champion version {better.registration.version}'s "
            f"{better.best.holdout['rmse']:.4f} on the same rows") in output
    assert client.get_model_version(name, worse.registration.version).tags[
        "promotion"].startswith("rejected: hold-out rmse")
