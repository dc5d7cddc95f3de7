"""The Open Inference Protocol (V2) pieces on their own, without a server: tensors to
records (shapes, unknown inputs, lengths, the row limit), row validation against the
spec's record model (types, ranges, categories, nulls) and the model metadata."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from contract.spec import load_dataset_spec
from serving.schema import record_model
from serving.v2 import (
    InferRequest,
    decode_infer_request,
    model_metadata,
    records_from_inputs,
    validate_records,
)

HEART = load_dataset_spec("heart")
HOUSING = load_dataset_spec("california_housing")
IRIS = load_dataset_spec("iris")
HEART_RECORD = record_model(HEART)
HOUSING_RECORD = record_model(HOUSING)

ROWS = [  # two complete heart records as a client sends them
    {"age": 63, "sex": 1, "cp": 1, "trestbps": 145.0, "chol": 233.0, "fbs": 1, "restecg": 2,
     "thalach": 150.0, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": 6},
    {"age": 67, "sex": 1, "cp": 4, "trestbps": 160.0, "chol": 286.0, "fbs": 0, "restecg": 2,
     "thalach": 108.0, "exang": 1, "oldpeak": 1.5, "slope": 2, "ca": 3, "thal": 3},
]


def tensor(name: str, data: list[Any], shape: list[int] | None = None,
           datatype: str = "FP64") -> dict[str, Any]:
    return {"name": name, "shape": shape or [len(data)], "datatype": datatype, "data": data}


def request(rows: list[dict[str, Any]], **overrides: dict[str, Any]) -> InferRequest:
    """One tensor per feature of `rows`; `overrides` replace a feature's tensor."""
    inputs = [overrides.get(name) or tensor(name, [row[name] for row in rows])
              for name in rows[0]]
    return InferRequest.model_validate({"inputs": inputs})


def infer(spec, record, req: InferRequest, max_records: int = 10) -> tuple[list, list]:
    """What the service's V2 route does before scoring: (valid records, every error)."""
    raw, errors = records_from_inputs(spec, req, max_records)
    records, invalid = validate_records(record, raw)
    return records, errors + invalid


def test_one_tensor_per_feature_gives_the_records_in_row_order() -> None:
    records, errors = records_from_inputs(HEART, request(ROWS), max_records=10)
    assert errors == [] and records == ROWS


def test_n_by_1_tensors_are_flattened() -> None:
    age = tensor("age", [[63], [67]], shape=[2, 1], datatype="INT64")
    records, errors = records_from_inputs(HEART, request(ROWS, age=age), max_records=10)
    assert errors == [] and [r["age"] for r in records] == [63, 67]


def test_nested_values_under_a_flat_shape_are_flattened_as_before() -> None:
    # Not the usual request (shape [N], flat values): it must take the full checks.
    age = tensor("age", [[63], [67]], shape=[2], datatype="INT64")
    records, errors = records_from_inputs(HEART, request(ROWS, age=age), max_records=10)
    assert errors == [] and [r["age"] for r in records] == [63, 67]


def test_a_repeated_input_name_counts_its_last_tensor() -> None:
    req = request(ROWS)
    req.inputs.append(InferRequest.model_validate(
        {"inputs": [tensor("age", [40, 41], datatype="INT64")]}).inputs[0])
    records, errors = records_from_inputs(HEART, req, max_records=10)
    assert errors == [] and [r["age"] for r in records] == [40, 41]


@pytest.mark.parametrize(("data", "shape"), [
    ([63, 67], [3]),  # the shape says 3 rows, the data has 2
    ([[63, 67]], [1, 2]),  # one row of two values: not a column
    ([[63, 1], [67, 1]], [2, 2]),  # two columns in one tensor
    ([[63], [67]], [2, 2]),  # the shape says two columns, the data has one
])
def test_a_shape_that_does_not_fit_the_data_is_refused(data: list, shape: list[int]) -> None:
    age = tensor("age", data, shape=shape)
    records, errors = records_from_inputs(HEART, request(ROWS, age=age), max_records=10)
    assert records == []
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs", "age", "shape"],
                                                         "shape_mismatch")]
    assert str(shape) in errors[0]["msg"]
    assert errors[0]["msg"].endswith("; use shape [N] (or [N, 1])")


def test_unknown_inputs_are_named_with_the_features_to_send() -> None:
    req = request(ROWS)
    req.inputs.append(InferRequest.model_validate(
        {"inputs": [tensor("cholesterol", [1.0, 2.0])]}).inputs[0])
    records, errors = records_from_inputs(HEART, req, max_records=10)
    assert records == []
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs", "cholesterol"],
                                                         "extra_forbidden")]
    assert "'chol'" in errors[0]["msg"] and "'thal'" in errors[0]["msg"]


def test_inputs_of_different_lengths_are_refused() -> None:
    age = tensor("age", [63, 67, 70])
    records, errors = records_from_inputs(HEART, request(ROWS, age=age), max_records=10)
    assert records == []
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs"], "shape_mismatch")]
    assert "[2, 3]" in errors[0]["msg"]


def test_more_rows_than_max_records_are_refused_and_the_limit_itself_is_not() -> None:
    rows = [ROWS[i % 2] for i in range(5)]
    assert records_from_inputs(HEART, request(rows), max_records=5)[1] == []
    records, errors = records_from_inputs(HEART, request(rows), max_records=4)
    assert records == []
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs"], "too_long")]
    assert "5 rows" in errors[0]["msg"] and "4" in errors[0]["msg"]


def test_every_tensor_problem_is_reported_at_once() -> None:
    req = request(ROWS, age=tensor("age", [63], shape=[2]))
    req.inputs.append(req.inputs[0].model_copy(update={"name": "unknown"}))
    _, errors = records_from_inputs(HEART, req, max_records=10)
    assert {tuple(e["loc"]) for e in errors} == {("inputs", "unknown"),
                                                 ("inputs", "age", "shape")}


def test_tensors_after_an_unknown_or_misshapen_one_are_still_checked() -> None:
    unknown = tensor("unknown", [1.0, 2.0])
    req = request(ROWS, age=tensor("age", [63], shape=[2]), sex=tensor("sex", [1], shape=[2]))
    req.inputs.insert(0, InferRequest.model_validate({"inputs": [unknown]}).inputs[0])
    _, errors = records_from_inputs(HEART, req, max_records=10)
    assert [tuple(e["loc"]) for e in errors] == [
        ("inputs", "unknown"), ("inputs", "age", "shape"), ("inputs", "sex", "shape")]


def test_a_request_whose_only_tensor_is_misshapen_gets_its_error() -> None:
    req = InferRequest.model_validate({"inputs": [tensor("age", [63], shape=[2])]})
    records, errors = records_from_inputs(HEART, req, max_records=10)
    assert records == [] and [e["type"] for e in errors] == ["shape_mismatch"]


def test_valid_rows_validate_to_the_record_model() -> None:
    records, errors = infer(HEART, HEART_RECORD, request(ROWS))
    assert errors == [] and records == ROWS


def test_errors_locate_the_input_tensor_and_the_row() -> None:
    rows = [ROWS[0], {**ROWS[1], "age": 500}, {**ROWS[0], "chol": 10.0}]
    records, errors = infer(HEART, HEART_RECORD, request(rows))
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["inputs", "age", 1], "less_than_equal"),
        (["inputs", "chol", 2], "greater_than_equal"),
    ]
    # Only where and why, never the rejected value (answers and logs carry no input).
    assert all(set(e) == {"loc", "type", "msg"} and e["msg"] for e in errors)
    assert len(records) == 1  # the route answers 400 for all when any row is invalid


@pytest.mark.parametrize(("feature", "value", "rule"), [
    ("age", "63", "int_type"),  # a number sent as a string (a BYTES tensor)
    ("age", 63.5, "int_type"),  # not an integer (strict: no float at all)
    ("chol", "233", "float_type"),
    ("cp", "1", "literal_error"),  # an integer-coded category sent as a string
    ("cp", 1.0, "literal_error"),  # or as a float
    ("sex", True, "literal_error"),  # a BOOL tensor for a 0/1 feature
    ("cp", 5, "literal_error"),  # not an allowed category
])
def test_values_of_the_wrong_type_are_refused_whatever_the_datatype_says(
        feature: str, value: Any, rule: str) -> None:
    rows = [ROWS[0], {**ROWS[1], feature: value}]
    _records, errors = infer(HEART, HEART_RECORD, request(rows))
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs", feature, 1], rule)]


def test_nullable_features_may_be_null_or_left_out_and_required_ones_may_not() -> None:
    nulls = [{**ROWS[0], "thal": None, "chol": None}]
    records, errors = infer(HEART, HEART_RECORD, request(nulls))
    assert errors == [] and records[0]["thal"] is None and records[0]["chol"] is None

    without = [{k: v for k, v in ROWS[0].items() if k not in ("thal", "chol")}]
    records, errors = infer(HEART, HEART_RECORD, request(without))
    assert errors == [] and records[0]["thal"] is None and records[0]["chol"] is None

    records, errors = infer(HEART, HEART_RECORD, request([{**ROWS[0], "age": None}]))
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs", "age", 0], "int_type")]

    missing = [{k: v for k, v in ROWS[0].items() if k != "age"}]
    records, errors = infer(HEART, HEART_RECORD, request(missing))
    assert records == []
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs", "age", 0], "missing")]


HOUSE = {"longitude": -122.23, "latitude": 37.88, "housing_median_age": 41.0,
         "total_rooms": 880.0, "total_bedrooms": 129.0, "population": 322.0,
         "households": 126.0, "median_income": 8.3252}


def test_string_categories_come_as_bytes_tensors() -> None:
    rows = [{**HOUSE, "ocean_proximity": "NEAR BAY"}, {**HOUSE, "ocean_proximity": "<1H OCEAN"}]
    proximity = tensor("ocean_proximity", ["NEAR BAY", "<1H OCEAN"], datatype="BYTES")
    records, errors = infer(HOUSING, HOUSING_RECORD, request(rows, ocean_proximity=proximity))
    assert errors == [] and [r["ocean_proximity"] for r in records] == ["NEAR BAY", "<1H OCEAN"]

    rows[1]["ocean_proximity"] = "near bay"  # categories are spelled as the spec spells them
    records, errors = infer(HOUSING, HOUSING_RECORD, request(rows))
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["inputs", "ocean_proximity", 1], "literal_error")]


@pytest.mark.parametrize("body", [
    {"inputs": []},  # no tensor at all
    {"inputs": [{"name": "age", "shape": [1, 1, 1], "datatype": "FP64", "data": [63]}]},
    {"inputs": [{"name": "age", "shape": [], "datatype": "FP64", "data": [63]}]},
    {"inputs": [{"name": "age", "shape": [1], "datatype": "FLOAT", "data": [63]}]},
    {"inputs": [{"name": "age", "shape": [1], "datatype": "FP64"}]},  # no data
])
def test_requests_outside_the_protocol_are_refused_by_the_request_model(body: dict) -> None:
    with pytest.raises(ValidationError):
        InferRequest.model_validate(body)


def test_metadata_lists_every_feature_and_a_classifiers_outputs() -> None:
    meta = model_metadata(HEART, "heart-disease-classifier", "v3")
    assert meta["name"] == "heart-disease-classifier" and meta["versions"] == ["v3"]
    assert meta["platform"] == "scikit-learn"
    assert [i["name"] for i in meta["inputs"]] == HEART.feature_names
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert meta["outputs"] == [
        {"name": "predict", "shape": [-1], "datatype": "BYTES"},
        {"name": "predict_proba", "shape": [-1, 2], "datatype": "FP64"},
    ]
    iris = model_metadata(IRIS, "iris-classifier", "v1")
    assert iris["outputs"][1]["shape"] == [-1, 3]


def test_metadata_of_a_regressor_with_a_string_category() -> None:
    meta = model_metadata(HOUSING, "california-housing-regressor", "v1")
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types.pop("ocean_proximity") == "BYTES" and set(types.values()) == {"FP64"}
    assert meta["outputs"] == [{"name": "predict", "shape": [-1], "datatype": "FP64"}]


def test_values_of_each_declared_datatype_validate() -> None:
    """The metadata declares the types validation takes (it said FP64 for integers)."""
    meta = model_metadata(HEART, "heart-disease-classifier", "v3")
    as_declared = {"FP64": float, "INT64": int, "BYTES": str}
    row = {i["name"]: as_declared[i["datatype"]](ROWS[0][i["name"]]) for i in meta["inputs"]}
    _records, errors = infer(HEART, HEART_RECORD, request([row]))
    assert errors == []


def test_zero_rows_are_refused() -> None:
    """Zero-row tensors reached the pipeline, which raised: the route answered 500."""
    empty = [tensor(name, []) for name in HEART.feature_names]
    _records, errors = infer(HEART, HEART_RECORD, InferRequest.model_validate({"inputs": empty}))
    assert [(e["loc"], e["type"]) for e in errors] == [(["inputs"], "too_short")]
    assert errors[0]["msg"] == "no rows: send at least one value per input"


WIRE_CASES = [
    {"id": "7", "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]},
    {"inputs": [{"name": "x", "shape": [2, 1], "datatype": "INT64", "data": [[1], [2]],
                 "parameters": {"a": 1}}], "outputs": [{"name": "predict"}], "extra": True},
    {"inputs": [{"name": "x", "shape": [1.0], "datatype": "FP64", "data": [1.5]}]},
    {"id": 7, "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]},
    {"inputs": [{"name": "x", "shape": [1, 1, 1], "datatype": "FP64", "data": [1.5]}]},
    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP99", "data": [1.5]}]},
    {"inputs": [{"name": 3, "shape": [1], "datatype": "FP64", "data": [1.5]}]},
    {"inputs": [{"name": "x", "shape": "1", "datatype": "FP64", "data": 1.5}]},
    {"inputs": []}, {"inputs": None}, {}, [], "x",
]


@pytest.mark.parametrize("case", WIRE_CASES)
def test_the_fast_paths_decoder_accepts_nothing_the_route_refuses(case) -> None:
    body = json.dumps(case).encode()
    try:
        wire = decode_infer_request(body)
    except msgspec.ValidationError:
        return  # goes on to the route, which answers whatever it answers
    routed = InferRequest.model_validate_json(body)  # raises if the route would refuse it
    assert wire.id == routed.id
    assert [(i.name, i.shape, i.datatype, i.data, i.parameters) for i in wire.inputs] == [
        (i.name, i.shape, i.datatype, i.data, i.parameters) for i in routed.inputs]


def test_the_fast_paths_decoder_takes_the_common_requests() -> None:
    for case in WIRE_CASES[:2]:
        assert decode_infer_request(json.dumps(case).encode()).inputs[0].name == "x"
