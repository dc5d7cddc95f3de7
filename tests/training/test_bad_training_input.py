"""Bad training data through the real command line: each file is refused with a message that
says what is wrong, exit code 2, and nothing reaches MLflow or the BentoML store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND
from tests.training.test_cli import _run

# Each case runs the training CLI in a subprocess (seconds each, eight cases).
pytestmark = pytest.mark.slow

HEART = load_dataset_spec("heart").source.columns
HOUSING = [*load_dataset_spec("california_housing").feature_names, "median_house_value"]


def cleveland() -> pd.DataFrame:
    return pd.read_csv(CLEVELAND, header=None, names=HEART, na_values=["?"])


def write_heart(frame: pd.DataFrame, path: Path, **options: object) -> None:
    frame.to_csv(path, index=False, na_rep="?", **({"header": False} | options))


def mixed_types(path: Path) -> None:
    frame = cleveland().astype(object)
    frame.loc[3, "chol"], frame.loc[8, "thalach"] = "high", "150 bpm"
    write_heart(frame, path)


def wrong_headers(path: Path) -> None:
    # California housing files have a header row; these names are not the spec's.
    rows = [[-122.2, 37.9, 41, 880, 129, 322, 126, 8.3, "NEAR BAY", 452600]] * 30
    pd.DataFrame(rows, columns=[c.upper() for c in HOUSING]).to_csv(path, index=False)


CASES: list[tuple[str, str, Callable[[Path], None], str]] = [
    ("wrong headers", "california_housing", wrong_headers,
     "missing column(s) ['longitude', 'latitude'"),
    ("unexpected header row", "heart",
     lambda p: write_heart(cleveland(), p, header=True), "the first row is a header row"),
    ("wrong delimiter", "heart", lambda p: write_heart(cleveland(), p, sep=";"),
     "separated by semicolons"),
    ("mixed types", "heart", mixed_types,
     "column 'chol': 1 value(s) are not numbers (type numeric), e.g. 'high'"),
    ("all-missing column", "heart",
     lambda p: write_heart(cleveland().assign(ca=None), p), "column 'ca': every value is missing"),
    ("single-class target", "heart", lambda p: write_heart(cleveland().assign(num=0), p),
     "the target has a single class ('absent')"),
    ("too few rows for the folds", "heart", lambda p: write_heart(cleveland().head(12), p),
     "too few for a 20% hold-out and 5 CV folds"),
    ("no data rows", "heart", lambda p: p.write_text(""), "the file has no data rows"),
]


@pytest.mark.parametrize(("dataset", "make", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_training_data_is_refused_and_nothing_is_registered(
        stores: Path, dataset: str, make: Callable[[Path], None], message: str) -> None:
    path = stores / "bad.csv"
    make(path)
    result = _run(stores, "--dataset", dataset, "--data", str(path))
    output = " ".join((result.stdout + result.stderr).split())  # rich wraps long lines
    assert result.returncode == 2, output[-2000:]
    assert message in output and str(path) in output
    assert "Traceback" not in output
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    assert MlflowClient(uri, registry_uri=uri).search_registered_models() == []
    mlflow.set_tracking_uri(uri)
    assert len(mlflow.search_runs(search_all_experiments=True)) == 0
    models = stores / "bentoml" / "models"
    assert not models.exists() or not any(models.iterdir())
