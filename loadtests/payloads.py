"""Request payloads drawn from the served model's own reference data, valid or deliberately not.

The reference sample travels with the model in the BentoML store, so payloads follow the
model's schema exactly; invalid ones break one rule of the spec each.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from contract.spec import DatasetSpec
from serving.model_store import example_record, find_served_model


def reference_records(model_tag: str) -> tuple[DatasetSpec, list[dict[str, Any]]]:
    served = find_served_model(model_tag)
    rows = served.reference[served.spec.feature_names].to_dict("records")
    return served.spec, [example_record(served.spec, row) for row in rows]


def invalidate(spec: DatasetSpec, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of `record` that breaks one rule: range, type, category, unknown or missing field."""
    bad = dict(record)
    feature = rng.choice(spec.features)
    rule = rng.choice(["range", "type", "unknown", "missing"])
    if rule == "range" and feature.is_numeric and feature.max is not None:
        bad[feature.name] = feature.max * 10 + 1
    elif rule == "range" and feature.is_categorical:
        bad[feature.name] = "not-a-category"
    elif rule == "type":
        bad[feature.name] = {"nested": [1, 2]}
    elif rule == "missing" and not feature.missing:
        bad.pop(feature.name)
    else:
        bad["unexpected_field"] = 1
    return bad


def write_payloads(model_tag: str, path: Path) -> Path:
    spec, records = reference_records(model_tag)
    path.write_text(json.dumps({"dataset": spec.name, "spec": spec.model_dump(mode="json"),
                                "records": records}))
    return path


def load_payloads(path: Path) -> tuple[DatasetSpec, list[dict[str, Any]]]:
    data = json.loads(path.read_text())
    return DatasetSpec.model_validate(data["spec"]), data["records"]
