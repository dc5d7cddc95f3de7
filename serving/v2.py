"""The Open Inference Protocol (KServe/MLServer/Triton "V2" REST): request/response shapes.

One input tensor per feature (shape [N]); outputs `predict` ([N]) and, for classifiers,
`predict_proba` ([N, classes], row-major).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.spec import DatasetSpec

Datatype = Literal["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
                   "UINT64", "FP16", "FP32", "FP64", "BYTES"]


class InferInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: Datatype
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


# The same request decoded by msgspec for the fast path (serving/fast_path.py): 7 against
# 36 µs for a one-row request of 30 tensors. It is at least as strict as the pydantic models
# (no coercion: a shape of 1.0 or an id of 7 is refused here, accepted or refused there), and
# whatever it refuses goes to the route, so the answers are the route's either way.
# gc=False: decoded JSON holds no reference cycles, so the collector need not track it.
class _WireInput(msgspec.Struct, gc=False):
    name: str
    shape: Annotated[list[int], msgspec.Meta(min_length=1, max_length=2)]
    datatype: Datatype
    data: list[Any]
    parameters: dict[str, Any] | None = None


class _WireRequest(msgspec.Struct, gc=False):
    inputs: Annotated[list[_WireInput], msgspec.Meta(min_length=1)]
    id: str | None = None
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


decode_infer_request = msgspec.json.Decoder(_WireRequest).decode


class InferOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    # request_id and timestamp (and request_ids, one per row, when there are several rows)
    parameters: dict[str, Any] | None = None
    outputs: list[InferOutput]


class TensorReader:
    """Records from one tensor per feature, and errors shaped like Pydantic's; the spec's
    names are read once, not per request."""

    def __init__(self, spec: DatasetSpec, max_records: int) -> None:
        self.names = frozenset(spec.feature_names)
        self.sorted_names = sorted(self.names)
        self.max_records = max_records

    def __call__(self, inputs: Sequence[Any]) -> tuple[list[dict[str, Any]],
                                                       list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        names = self.names
        by_name = {i.name: i for i in inputs}  # a repeated name: the last tensor counts
        if not by_name.keys() <= names:
            for name in sorted(by_name.keys() - names):
                errors.append({"loc": ["inputs", name], "type": "extra_forbidden",
                               "msg": f"unknown input '{name}'; inputs are the features "
                                      f"{self.sorted_names}"})
        lengths = set()
        columns: dict[str, list[Any]] = {}
        for name, tensor in by_name.items():
            if name not in names:
                continue
            data = tensor.data
            if data and type(data[0]) is list:  # [N, 1]; JSON arrays decode as lists
                data = [item for row in data for item in row]
            shape = tensor.shape
            if shape[0] != len(data) or (len(shape) == 2 and shape[1] != 1):
                errors.append({"loc": ["inputs", name, "shape"], "type": "shape_mismatch",
                               "msg": f"shape {shape} does not match {len(data)} value(s); "
                                      "use shape [N] (or [N, 1])"})
                continue
            lengths.add(len(data))
            columns[name] = data
        if len(lengths) > 1:
            errors.append({"loc": ["inputs"], "type": "shape_mismatch",
                           "msg": f"inputs have different lengths {sorted(lengths)}"})
        rows = lengths.pop() if len(lengths) == 1 else 0
        if len(lengths) == 0 and not errors and rows == 0:
            errors.append({"loc": ["inputs"], "type": "too_short",
                           "msg": "no rows: send at least one value per input"})
        if rows > self.max_records:
            errors.append({"loc": ["inputs"], "type": "too_long",
                           "msg": f"{rows} rows is more than the limit of {self.max_records}"})
        if errors:
            return [], errors
        if rows == 1:
            return [{name: column[0] for name, column in columns.items()}], []
        return [dict(zip(columns, row, strict=True)) for row in
                zip(*columns.values(), strict=True)], []


def records_from_inputs(
    spec: DatasetSpec, request: InferRequest, max_records: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records from one tensor per feature, and errors shaped like Pydantic's."""
    return TensorReader(spec, max_records)(request.inputs)


def validate_records(
    record_model: type[BaseModel], records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate every row; errors locate the input tensor and the row index."""
    valid: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            valid.append(record_model.model_validate(record).__dict__)  # flat field values
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_context=False, include_input=False):
                field = error["loc"][0] if error["loc"] else "record"
                errors.append({"loc": ["inputs", field, index], "type": error["type"],
                               "msg": error["msg"]})
    return valid, errors


def model_metadata(spec: DatasetSpec, name: str, version: str) -> dict[str, Any]:
    """GET /v2/models/{name}: the model's inputs and outputs."""
    inputs = [{"name": f.name, "datatype": _datatype(f), "shape": [-1]} for f in spec.features]
    outputs = [{"name": "predict", "shape": [-1],
                "datatype": "BYTES" if spec.is_classifier else "FP64"}]
    if spec.is_classifier:
        outputs.append({"name": "predict_proba", "shape": [-1, len(spec.target.classes or [])],
                        "datatype": "FP64"})
    return {"name": name, "versions": [version], "platform": "scikit-learn",
            "inputs": inputs, "outputs": outputs}


def _datatype(feature: Any) -> str:
    """The tensor type a client must send: validation is strict, so integers (and categories
    coded as integers) are INT64, not FP64, which would send 63.0 for 63 and be refused."""
    if feature.type == "numeric":
        return "FP64"
    if feature.type == "integer":
        return "INT64"
    return "BYTES" if any(isinstance(v, str) for v in feature.choices) else "INT64"
