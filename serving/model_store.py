"""What the service needs to know about the model it serves, read from the BentoML store."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import bentoml

from contract.spec import DatasetSpec, canonical_value


class ModelNotFoundError(RuntimeError):
    """The configured model is not in the BentoML store."""


@dataclass(frozen=True)
class ServedModel:
    tag: str
    name: str
    version: str
    spec: DatasetSpec
    metadata: dict[str, Any]
    labels: dict[str, str]
    example: dict[str, Any]
    # Up to 1,000 training rows stored with the model: drift reference, load-test payloads.
    reference: Any = field(default=None, repr=False, compare=False)

    @property
    def classes(self) -> list[str]:
        return list(self.metadata.get("classes") or [])

    @property
    def compiled_engine(self) -> str:
        """The engine of the compiled form stored with the model, or "sklearn" if none."""
        return (self.metadata.get("compiled") or {}).get("engine") or "sklearn"

    def info(self) -> dict[str, Any]:
        """The /model_info answer."""
        meta = self.metadata
        return {
            "model_name": self.name,
            "model_version": self.version,
            "bentoml_tag": self.tag,
            "mlflow_run_id": self.labels.get("mlflow_run_id"),
            "mlflow_model_version": self.labels.get("mlflow_model_version"),
            "trained_at": meta.get("trained_at"),
            "task": self.spec.task,
            "classes": self.classes or None,
            "positive_class": self.spec.target.positive_class,
            "candidate": meta.get("candidate"),
            "compiled": meta.get("compiled"),
            "holdout_metrics": meta.get("holdout_metrics"),
            "data_digest": meta.get("data_digest"),
            "dataset": self.spec.name,
            "features": [f.model_dump(exclude_none=True) for f in self.spec.features],
            "engineered_features": [
                e.model_dump(exclude_none=True) for e in self.spec.engineered_features
            ],
        }


def find_served_model(tag: str) -> ServedModel:
    try:
        model = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as exc:
        name = tag.split(":")[0]
        raise ModelNotFoundError(
            f"model '{tag}' is not in the BentoML store "
            f"({os.environ.get('BENTOML_HOME', '~/bentoml')}). "
            f"Create it with: python -m training --dataset DATASET (the data set whose spec "
            f"has model_name '{name}'), or set MODEL_NAME / MODEL_TAG to a model that exists "
            "(list them with: bentoml models list)."
        ) from exc
    meta = dict(model.info.metadata)
    spec = DatasetSpec.model_validate(meta["spec"])
    reference = model.custom_objects.get("reference_sample")
    return ServedModel(
        tag=str(model.tag),
        name=model.tag.name,
        version=model.tag.version or "",
        spec=spec,
        metadata=meta,
        labels=dict(model.info.labels),
        example=example_record(spec, reference.iloc[0].to_dict()) if reference is not None else {},
        reference=reference,
    )


def example_record(spec: DatasetSpec, row: dict[str, Any]) -> dict[str, Any]:
    """A training row as a client would send it: JSON types, the spec's spelling of categories."""
    record: dict[str, Any] = {}
    for feature in spec.features:
        value = row.get(feature.name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            record[feature.name] = None
        elif feature.is_categorical:
            key = canonical_value(value)
            record[feature.name] = next(
                (v for v in feature.choices or () if canonical_value(v) == key), value)
        elif feature.type == "integer":
            record[feature.name] = int(value)
        else:
            record[feature.name] = float(value)
    return record
