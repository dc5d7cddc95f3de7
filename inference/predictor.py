"""One interface for scoring validated records, compiled or not: what the service's batcher,
its model service and batch scoring call.

A `Predictor` turns records into class probabilities (in its own `classes` order) or values.
`load_predictor` picks the compiled form stored with a BentoML model when there is one and
it is wanted, else the scikit-learn pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from contract.spec import DatasetSpec
from inference.compiled import CompiledModel

COMPILED_OBJECT = "compiled"  # the BentoML custom object holding CompiledModel.to_dict()


class Predictor(Protocol):
    engine: str
    classes: list[Any] | None

    def predict(self, records: Sequence[dict[str, Any]]) -> np.ndarray: ...


def records_to_frame(spec: DatasetSpec, records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Spec columns in spec order; absent or null values become NaN for the imputers."""
    frame = pd.DataFrame.from_records(list(records), columns=spec.feature_names)
    return frame.where(frame.notna(), np.nan)


@dataclass
class SklearnPredictor:
    spec: DatasetSpec
    pipeline: Any
    engine: str = "sklearn"

    @property
    def classes(self) -> list[Any] | None:
        return list(self.pipeline.classes_) if self.spec.is_classifier else None

    def predict(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        frame = records_to_frame(self.spec, records)
        if self.spec.is_classifier:
            return self.pipeline.predict_proba(frame)
        return np.asarray(self.pipeline.predict(frame), dtype=float)


def stored_compiled(model: Any) -> CompiledModel | None:
    """The compiled form saved with a BentoML model, if training made one."""
    data = model.custom_objects.get(COMPILED_OBJECT)
    return CompiledModel.from_dict(data) if data else None


def load_predictor(model: Any, spec: DatasetSpec, prefer_compiled: bool = True) -> Predictor:
    """The compiled form of a BentoML model when stored and wanted, else its pipeline."""
    if prefer_compiled:
        compiled = stored_compiled(model)
        if compiled is not None:
            return compiled
    import bentoml

    return SklearnPredictor(spec, bentoml.sklearn.load_model(model))
