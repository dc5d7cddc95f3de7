import pandas as pd
import pytest

from contract.spec import DatasetSpec, load_dataset_spec
from tests.conftest import CLEVELAND
from training.data import DataValidationError, load_dataset, read_raw, validate_frame

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


# The exact messages (README, Data sets): what a user reads when their data is refused.

def _spec_with(**features: dict) -> DatasetSpec:
    """The heart spec with some features' fields replaced."""
    raw = load_dataset_spec("heart").model_dump()
    for feature in raw["features"]:
        feature.update(features.get(feature["name"], {}))
    return DatasetSpec.model_validate(raw)


def _refused(spec: DatasetSpec, frame: pd.DataFrame) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        validate_frame(spec, frame, "bad.csv")
    assert info.value.source == "bad.csv"
    return info.value


def test_the_error_lists_every_problem_and_what_to_do() -> None:
    error = DataValidationError("file.csv", ["one", "two"])
    assert (error.source, error.problems) == ("file.csv", ["one", "two"])
    assert str(error) == (
        "file.csv: data does not match the data set spec (2 problem(s)):\n"
        "  - one\n  - two\n"
        "Fix the data or the spec under configs/datasets/; nothing was trained.")


def test_a_missing_column_names_the_first_twelve_columns_found() -> None:
    frame = _heart_rows().drop(columns=["chol"])
    assert _refused(load_dataset_spec("heart"), frame).problems == [
        "missing column(s) ['chol']; the file has: age, sex, cp, trestbps, fbs, restecg, "
        "thalach, exang, oldpeak, slope, ca, thal"]  # not the 13th, num


def test_open_ended_ranges_and_at_most_five_examples() -> None:
    spec = _spec_with(chol={"max": None}, oldpeak={"min": None})
    frame = _heart_rows()
    frame.loc[range(7), "chol"] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7000.0]
    frame.loc[0, "oldpeak"] = 50.5
    assert _refused(spec, frame).problems == [
        "column 'chol': 6 value(s) outside the valid range [80, inf], e.g. 1, 2, 3, 4, 5",
        "column 'oldpeak': 1 value(s) outside the valid range [-inf, 10], e.g. 50.5"]


def test_missing_values_where_not_allowed_and_a_column_with_none() -> None:
    frame = _heart_rows()
    frame.loc[3, "age"] = None
    frame["chol"] = float("nan")  # chol may be missing, but not every value
    assert _refused(load_dataset_spec("heart"), frame).problems == [
        "column 'age': 1 missing value(s) but the spec says it may not be missing",
        "column 'chol': every value is missing"]


def test_values_that_are_neither_text_nor_numbers_are_shown_as_they_print() -> None:
    frame = _heart_rows().astype({"trestbps": object})
    frame.loc[0, "trestbps"] = b"high"
    assert _refused(load_dataset_spec("heart"), frame).problems == [
        "column 'trestbps': 1 value(s) are not numbers (type numeric), e.g. b'high'"]


def test_invalid_targets_say_what_a_target_must_be() -> None:
    frame = _heart_rows()
    frame.loc[[0, 5], "num"] = [7, None]
    assert _refused(load_dataset_spec("heart"), frame).problems == [
        "target 'num': 2 invalid value(s) (must be values mapped to classes "
        "['absent', 'present']), e.g. '7', 'None'"]

    raw = load_dataset_spec("heart").model_dump()
    raw["target"]["mapping"] = None  # the labels themselves
    frame["num"] = ["absent"] * 39 + ["maybe"]
    assert _refused(DatasetSpec.model_validate(raw), frame).problems == [
        "target 'num': 1 invalid value(s) (must be one of the classes ['absent', 'present']), "
        "e.g. 'maybe'"]

    diabetes = load_dataset(load_dataset_spec("diabetes"))
    frame = diabetes.features.assign(target=diabetes.target.astype(object))
    frame.loc[2, "target"] = "high"
    assert _refused(diabetes.spec, frame).problems == [
        "target 'target': 1 invalid value(s) (must be numbers), e.g. 'high'"]


def test_a_valid_frame_keeps_its_source_and_target_name() -> None:
    frame = _heart_rows().dropna()
    dataset = validate_frame(load_dataset_spec("heart"), frame.set_index(frame.index + 100),
                             "ok.csv")
    assert dataset.source == "ok.csv" and dataset.target.name == "num"
    assert dataset.features.index.tolist() == list(range(len(frame)))
    assert dataset.target.tolist() == [
        "absent" if v == 0 else "present" for v in frame["num"]]


# The file's layout, said plainly (read_raw): a wrong delimiter, a header row, no rows.

HEART_ROWS = CLEVELAND.read_text().splitlines()[:30]


def _read(tmp_path, lines: list[str], dataset: str = "heart") -> pd.DataFrame:
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    frame, shown = read_raw(load_dataset_spec(dataset), path)
    assert shown == str(path)
    return frame


def _layout(tmp_path, lines: list[str], dataset: str = "heart") -> str:
    with pytest.raises(DataValidationError) as info:
        _read(tmp_path, lines, dataset)
    [problem] = info.value.problems
    return problem


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolons"), ("\t", "tabs"),
                                                 ("|", "pipes")])
def test_a_file_with_another_delimiter_is_named_as_such(tmp_path, delimiter, name) -> None:
    expected = (f"every row is a single field: the file seems to be separated by {name}; "
                "the data set expects comma-separated values")
    rows = [r.replace(",", delimiter) for r in HEART_ROWS]
    assert _layout(tmp_path, rows) == expected  # no header: the rows say it
    # A stray line past the first 20 rows does not hide it.
    assert _layout(tmp_path, [*rows[:20], "1", *rows[20:]]) == expected
    header = delimiter.join(["longitude", "latitude", "median_house_value"])
    assert _layout(tmp_path, [header, delimiter.join(["1", "2", "3"])],
                   "california_housing") == expected


def test_one_field_per_row_without_a_known_delimiter_is_left_to_validation(tmp_path) -> None:
    frame = _read(tmp_path, ["63", "67", "41"])
    assert frame["age"].tolist() == [63, 67, 41] and frame["num"].isna().all()


def test_two_fields_per_row_are_not_a_single_field(tmp_path) -> None:
    frame = _read(tmp_path, [r.replace(",", ";", 12) for r in HEART_ROWS])
    assert frame["age"].str.contains(";").all() and frame["sex"].notna().all()
    frame = _read(tmp_path, ["longitude;latitude,total_rooms", "1;2,3"], "california_housing")
    assert frame.columns.tolist() == ["longitude;latitude", "total_rooms"]


def test_a_header_with_another_delimiter_is_enough_to_tell(tmp_path) -> None:
    assert _layout(tmp_path, ["longitude;latitude;total_rooms", "1", "2"],
                   "california_housing") == (
        "every row is a single field: the file seems to be separated by semicolons; "
        "the data set expects comma-separated values")


def test_a_header_row_is_named_with_the_columns_expected(tmp_path) -> None:
    names = HEART_COLUMNS
    problem = _layout(tmp_path, [",".join(n.upper() for n in names), *HEART_ROWS])
    assert problem == (
        "the first row is a header row (age, sex, cp, trestbps, chol, ...); files of this "
        f"data set have none (columns in order: {', '.join(names)}): remove that row")
    # Half the names is a header; fewer is data (with bad values, for validation to list).
    half = [n if i < 7 else "1" for i, n in enumerate(names)]
    assert _layout(tmp_path, [",".join(half), *HEART_ROWS]).startswith("the first row is")
    fewer = [n if i < 6 else "1" for i, n in enumerate(names)]
    assert _read(tmp_path, [",".join(fewer), *HEART_ROWS]).iloc[0, 0] == "age"


def test_a_file_without_rows_is_refused_and_one_row_is_read(tmp_path) -> None:
    assert _layout(tmp_path, ["longitude,latitude"], "california_housing") == \
        "the file has no data rows"
    assert len(_read(tmp_path, HEART_ROWS[:1])) == 1
