"""Model quality with the committed config and fixed seeds: the targets of the training issue."""

import pytest
from rich.console import Console

from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND
from training.config import load_training_config
from training.data import load_dataset
from training.train import run_training


@pytest.mark.slow
@pytest.mark.parametrize(("name", "data", "metric", "floor"), [
    ("breast_cancer", None, "roc_auc", 0.98),
    ("iris", None, "accuracy", 0.93),
    ("heart", CLEVELAND, "roc_auc", 0.88),
])
def test_hold_out_quality(stores, name, data, metric, floor) -> None:
    dataset = load_dataset(load_dataset_spec(name), data)
    outcome = run_training(dataset, load_training_config(), console=Console(quiet=True))
    assert outcome.best.holdout[metric] >= floor


@pytest.mark.slow
def test_regression_hold_out_quality(stores) -> None:
    """Diabetes (RMSE, lower is better): the champion explains a good part of the variance,
    well beyond predicting the mean (whose RMSE is about the target's standard deviation)."""
    dataset = load_dataset(load_dataset_spec("diabetes"))
    outcome = run_training(dataset, load_training_config(), console=Console(quiet=True))
    holdout = outcome.best.holdout
    assert holdout["r2"] > 0.3
    assert holdout["rmse"] < 0.8 * dataset.target.std()
