import pandas as pd
import pytest

from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND
from training.data import DataValidationError, load_dataset, validate_frame

HEART_COLUMNS = load_dataset_spec("heart").source.columns


def _heart_rows() -> pd.DataFrame:
    return pd.read_csv(CLEVELAND, header=None, names=HEART_COLUMNS, na_values=["?"]).head(40)


def _problems(frame: pd.DataFrame) -> str:
    with pytest.raises(DataValidationError) as info:
        validate_frame(load_dataset_spec("heart"), frame, "bad.csv")
    return str(info.value)


def test_cleveland_file_loads_with_missing_values() -> None:
    dataset = load_dataset(load_dataset_spec("heart"), CLEVELAND)
    assert dataset.features.shape == (303, 13)
    assert set(dataset.target) == {"absent", "present"}
    assert dataset.features["ca"].isna().sum() == 4  # '?' in the source
    thal = dataset.features["thal"]
    assert set(thal.dropna()) == {"3", "6", "7"} and thal.isna().sum() == 2


def test_missing_column_is_named() -> None:
    message = _problems(_heart_rows().drop(columns=["chol"]))
    assert "bad.csv" in message and "missing column(s) ['chol']" in message


def test_wrong_type_counts_and_shows_examples() -> None:
    frame = _heart_rows().astype({"trestbps": object})
    frame.loc[[0, 1], "trestbps"] = "high"
    message = _problems(frame)
    assert "column 'trestbps': 2 value(s) are not numbers" in message and "'high'" in message


def test_out_of_range_values_are_counted_with_examples() -> None:
    frame = _heart_rows()
    frame.loc[[0, 1, 2], "chol"] = [5.0, 9999.0, 10.0]
    message = _problems(frame)
    assert "column 'chol': 2 value(s) outside the valid range [80, 700], e.g. 5, 10" in message
    assert "column 'chol': 1 value(s) outside the valid range [80, 700], e.g. 9999" in message


def test_unknown_category_is_refused() -> None:
    frame = _heart_rows()
    frame.loc[0, "cp"] = 9
    expected = "column 'cp': 1 value(s) are not allowed categories ['1', '2', '3', '4']"
    assert expected in _problems(frame)


def test_non_integer_in_integer_column() -> None:
    frame = _heart_rows()
    frame.loc[0, "age"] = 50.5
    assert "column 'age': 1 value(s) are not integers" in _problems(frame)


def test_missing_value_where_not_allowed() -> None:
    frame = _heart_rows()
    frame.loc[3, "age"] = None
    assert "column 'age': 1 missing value(s)" in _problems(frame)


def test_invalid_target_values() -> None:
    frame = _heart_rows()
    frame.loc[[0, 5], "num"] = [7, None]
    assert "target 'num': 2 invalid value(s)" in _problems(frame)


def test_all_problems_are_reported_at_once() -> None:
    frame = _heart_rows()
    frame.loc[0, "cp"] = 9
    frame.loc[0, "age"] = 500
    with pytest.raises(DataValidationError) as info:
        validate_frame(load_dataset_spec("heart"), frame, "bad.csv")
    assert len(info.value.problems) == 2


def test_missing_file_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="--data"):
        load_dataset(load_dataset_spec("heart"), tmp_path / "nope.csv")


def test_digest_is_stable_and_content_sensitive() -> None:
    spec = load_dataset_spec("iris")
    first, second = load_dataset(spec), load_dataset(spec)
    assert first.digest == second.digest
    changed = validate_frame(spec, first.features.assign(target=0).iloc[1:], "x")
    assert changed.digest != first.digest
