"""The vectorised check agrees with the service's Pydantic request model, row by row, on
fuzzed rows of every kind of value a file can hold."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from contract.spec import DatasetSpec, FeatureSpec, load_dataset_spec
from scoring.validate import check, row_record
from serving.schema import record_model


def fuzz_value(feature: FeatureSpec, rng: random.Random) -> object:
    low = feature.min if feature.min is not None else -1e3
    high = feature.max if feature.max is not None else 1e3
    inside = rng.uniform(low, high)
    choices: list[object] = [
        None, math.nan, math.inf, -math.inf, True, False, "", "  ", "?", "abc", "nan", "inf",
        inside, round(inside), str(round(inside, 3)), f" {round(inside)} ", low - 1, high + 1,
        low, high, 2.5, "1e400", str(low - 1), "3.0",
    ]
    if feature.is_categorical:
        allowed = list(feature.choices or [])
        choices += allowed * 3 + [str(v) for v in allowed] + [9, "9", 1.5, "other"]
        choices += [float(v) for v in allowed if isinstance(v, int)]
    return rng.choice(choices)


def valid_value(feature: FeatureSpec, rng: random.Random) -> object:
    if feature.is_categorical:
        return rng.choice(list(feature.choices or []))
    value = rng.uniform(feature.min or 0, feature.max or 100)
    return math.floor(value) if feature.type == "integer" else value


def fuzz_rows(spec: DatasetSpec, count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        # valid rows, rows with one or two odd fields, and some wholly random ones
        row = {f.name: valid_value(f, rng) for f in spec.features}
        odd = rng.sample(spec.features, k=min(len(spec.features), rng.choice([0, 0, 1, 2, 99])))
        rows.append(row | {f.name: fuzz_value(f, rng) for f in odd})
    return rows


def pydantic_verdicts(spec: DatasetSpec, rows: list[dict[str, object]]) -> set[tuple]:
    model = record_model(spec)
    found = set()
    for index, row in enumerate(rows):
        try:
            model.model_validate(row_record(spec, row))
        except ValidationError as exc:
            found |= {(index, str(e["loc"][0]), e["type"]) for e in exc.errors()}
    return found


def vector_verdicts(spec: DatasetSpec, frame: pd.DataFrame | pa.Table) -> set[tuple]:
    problems = check(spec, frame).problems
    return set(zip(problems["row"].tolist(), problems["field"], problems["rule"], strict=True))


@pytest.mark.parametrize("dataset", ["heart", "diabetes", "iris", "california_housing"])
def test_check_agrees_with_the_services_pydantic_model_on_mixed_rows(dataset: str) -> None:
    spec = load_dataset_spec(dataset)
    rows = fuzz_rows(spec, 400, seed=7)
    expected = pydantic_verdicts(spec, rows)
    assert vector_verdicts(spec, pd.DataFrame(rows, dtype=object)) == expected
    assert len({r for r, _, _ in expected}) > 100  # the fuzz really breaks rules
    assert len({r for r, _, _ in expected}) < 400


@pytest.mark.parametrize("dataset", ["heart", "diabetes"])
def test_check_agrees_on_text_columns_as_csv_gives_them(dataset: str) -> None:
    """CSV columns are text: the same verdicts when every value is its text."""
    spec = load_dataset_spec(dataset)
    rows = [{k: ("" if v is None else repr(v) if isinstance(v, float) else str(v))
             for k, v in row.items()} for row in fuzz_rows(spec, 400, seed=11)]
    table = pa.table({f.name: pa.array([r[f.name] for r in rows], pa.string())
                      for f in spec.features})
    assert vector_verdicts(spec, table) == pydantic_verdicts(spec, rows)


def test_typed_columns_as_parquet_gives_them() -> None:
    """Typed columns: an integer column with nulls is float (3.0 counts as 3), a bool
    column is never a number, and NaN is missing."""
    spec = load_dataset_spec("heart")
    rows = [{"age": 50.0, "sex": 1, "cp": 4.0}, {"age": 50.5, "sex": 1, "cp": 4.0},
            {"age": math.nan, "sex": 1, "cp": math.nan}, {"age": 200.0, "sex": 0, "cp": 9.0}]
    frame = pd.DataFrame(rows)
    for feature in spec.features[3:]:
        frame[feature.name] = np.nan
    assert vector_verdicts(spec, frame) == pydantic_verdicts(spec, frame.to_dict("records")) == {
        (1, "age", "int_type"), (2, "age", "missing"), (2, "cp", "missing"),
        (3, "age", "less_than_equal"), (3, "cp", "literal_error")}
    flags = frame.assign(sex=[True, False, True, False])
    assert {(r, f) for r, f, _ in vector_verdicts(spec, flags)} >= {(i, "sex") for i in range(4)}


def test_model_input_is_the_services_frame() -> None:
    """Valid rows reach the pipeline as the service's records would: numbers as floats,
    categories in the spec's spelling, missing as NaN/None."""
    spec = load_dataset_spec("heart")
    table = pa.table({f.name: pa.array(v, pa.string()) for f, v in zip(spec.features, [
        ["63"], ["1.0"], ["1"], ["145"], ["?"], ["1"], [""], ["150"], ["0"], ["2.3"], ["3"],
        ["0"], ["6.0"]], strict=True)})
    checked = check(spec, table)
    assert checked.valid.tolist() == [True]
    row = checked.frame.iloc[0]
    assert row["age"] == 63.0 and row["cp"] == 1 and row["thal"] == 6
    assert math.isnan(row["chol"]) and row["restecg"] is None
