"""Between validated records and answers: build the model's input frame, format its output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract.spec import DatasetSpec
from serving.config import RiskThresholds


def records_to_frame(spec: DatasetSpec, records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Spec columns in spec order; absent or null values become NaN for the imputers."""
    columns = spec.feature_names
    frame = pd.DataFrame.from_records(list(records), columns=columns)
    return frame.where(frame.notna(), np.nan)


@dataclass(frozen=True)
class Formatter:
    """Turns one row of model output into the API's answer for that record."""

    spec: DatasetSpec
    classes: list[str]  # the pipeline's classes_ order (columns of predict_proba)
    risk: RiskThresholds
    model_name: str
    model_version: str

    def answer(self, row: np.ndarray | float) -> dict[str, Any]:
        base = {"model_name": self.model_name, "model_version": self.model_version}
        if self.spec.task == "regression":
            return base | {"prediction": float(row)}
        probabilities = {label: float(p) for label, p in zip(self.classes, row, strict=True)}
        answer = base | {
            "prediction": self.classes[int(np.argmax(row))],
            "probabilities": probabilities,
        }
        if self.spec.task == "binary":
            positive = probabilities[self.spec.target.positive_class or ""]
            answer |= {"probability": positive, "risk_level": self.risk.level(positive)}
        return answer
