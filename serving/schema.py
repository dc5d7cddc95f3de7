"""Request and response models generated from a data set spec.

Every constraint of the spec (type, range, allowed values, may-be-missing) becomes a
Pydantic constraint, so validation and the OpenAPI document say the same thing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from contract.spec import DatasetSpec, FeatureSpec


def _describe(feature: FeatureSpec) -> str:
    unit = f" [{feature.unit}]" if feature.unit else ""
    missing = " May be null or omitted." if feature.missing else ""
    return f"{feature.description}{unit}.{missing}"


def _exact_type(values: list[Any]) -> BeforeValidator:
    # Literal[0, 1] alone accepts true/false and 0.0/1.0 (they compare equal in Python);
    # JSON Schema says they are not integers, and the OpenAPI document says integer.
    integers = all(isinstance(v, int) for v in values)

    def check(value: Any) -> Any:
        if isinstance(value, bool) or (integers and isinstance(value, float)):
            raise PydanticCustomError("literal_error", "Input should be one of {values}, "
                                      "as written (not {kind})",
                                      {"values": values, "kind": type(value).__name__})
        return value
    return BeforeValidator(check)


def _field_type(feature: FeatureSpec) -> Any:
    if feature.is_categorical:
        values = feature.choices
        return Annotated[Literal[tuple(values)], _exact_type(values)]  # type: ignore[valid-type]
    bounds = {"ge": feature.min, "le": feature.max}
    bounds = {k: v for k, v in bounds.items() if v is not None}
    if feature.type == "integer":
        return Annotated[int, Field(strict=True, **bounds)]
    # strict: "5" is refused, not coerced; ints are still accepted as numbers.
    return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]


def record_model(spec: DatasetSpec, example: dict[str, Any] | None = None) -> type[BaseModel]:
    """One raw record: a flat object of the spec's features."""
    fields: dict[str, Any] = {}
    for feature in spec.features:
        kind, description = _field_type(feature), _describe(feature)
        if feature.missing:
            fields[feature.name] = (kind | None, Field(default=None, description=description))
        else:
            fields[feature.name] = (kind, Field(description=description))
    example = example or _example(spec)
    model = create_model(
        _class_name(spec, "Record"),
        __config__=ConfigDict(
            extra="forbid", title=f"{spec.name} record",
            json_schema_extra={"example": example},
        ),
        **fields,
    )
    model.__doc__ = f"One {spec.name} record: {spec.description}"
    return model


def batch_model(spec: DatasetSpec, record: type[BaseModel], max_records: int) -> type[BaseModel]:
    return create_model(
        _class_name(spec, "Batch"),
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(min_length=1, max_length=max_records,  # type: ignore[valid-type]
                                     description=f"1 to {max_records} records")),
    )


def prediction_model(spec: DatasetSpec) -> type[BaseModel]:
    """The answer for one record; its fields depend on the task."""
    fields: dict[str, Any] = {
        "model_name": (str, ...), "model_version": (str, ...),
        "request_id": (str, Field(description=(
            "this record's id, for GET /predictions/{request_id} and POST /feedback: the "
            "request's X-Request-ID (else a new UUID); record i of a multi-record request "
            "is '<id>.<i>'"))),
        "timestamp": (str, Field(description="when it was scored (UTC, ISO 8601)",
                                 json_schema_extra={"format": "date-time"})),
    }
    if not spec.is_classifier:
        unit = f" [{spec.target.unit}]" if spec.target.unit else ""
        fields["prediction"] = (float, Field(description=f"{spec.target.description}{unit}"))
    else:
        classes = tuple(spec.target.classes or [])
        fields["prediction"] = (Literal[classes], Field(description=spec.target.description))  # type: ignore[valid-type]
        fields["probabilities"] = (dict[str, float], Field(description="class -> probability"))
    if spec.task == "binary":
        fields["probability"] = (float, Field(
            description=f"probability of '{spec.target.positive_class}'"))
        fields["risk_level"] = (Literal["low", "medium", "high"], ...)
    return create_model(_class_name(spec, "Prediction"), **fields)


def batch_prediction_model(prediction: type[BaseModel]) -> type[BaseModel]:
    return create_model(f"{prediction.__name__}s", predictions=(list[prediction], ...))  # type: ignore[valid-type]


def _class_name(spec: DatasetSpec, suffix: str) -> str:
    return "".join(part.title() for part in spec.name.split("_")) + suffix


def _example(spec: DatasetSpec) -> dict[str, Any]:
    """A valid example record (middle of each range, first allowed value) for the docs."""
    example: dict[str, Any] = {}
    for feature in spec.features:
        if feature.is_categorical:
            example[feature.name] = feature.choices[0]  # type: ignore[index]
        elif feature.min is not None and feature.max is not None:
            middle = (feature.min + feature.max) / 2
            example[feature.name] = round(middle) if feature.type == "integer" else middle
        else:
            example[feature.name] = 0 if feature.type == "integer" else 0.0
    return example
