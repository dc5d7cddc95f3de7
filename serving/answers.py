"""The API's answers from the model's output rows: the JSON answer per record and the Open
Inference Protocol (V2) output tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.spec import DatasetSpec
from serving.config import RiskThresholds


@dataclass(frozen=True)
class Formatter:
    """Turns one row of model output into the API's answer for that record."""

    spec: DatasetSpec
    classes: list[str]  # the spec's class order: the scorer orders its columns so
    risk: RiskThresholds
    model_name: str
    model_version: str

    def answer(self, row: np.ndarray | float) -> dict[str, Any]:
        return self._answer(np.asarray(row).tolist())

    def answers(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """One answer per row of a model call (one conversion to Python for the batch)."""
        return [self._answer(values) for values in np.asarray(rows).tolist()]

    def _answer(self, values: list[float] | float) -> dict[str, Any]:
        answer: dict[str, Any] = {"model_name": self.model_name,
                                  "model_version": self.model_version}
        if not self.spec.is_classifier:
            answer["prediction"] = float(values)  # type: ignore[arg-type]
            return answer
        # A few classes are cheaper in Python than through NumPy's per-call dispatch; max
        # keeps the first of tied classes, as argmax does.
        probabilities = dict(zip(self.classes, values, strict=True))  # type: ignore[arg-type]
        answer["prediction"] = max(probabilities, key=probabilities.__getitem__)
        answer["probabilities"] = probabilities
        if self.spec.task == "binary":
            positive = probabilities[self.spec.target.positive_class or ""]
            answer["probability"] = positive
            answer["risk_level"] = self.risk.level(positive)
        return answer

    def v2_outputs(self, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`predict` ([N]) and, for classifiers, `predict_proba` ([N, classes], row-major):
        InferOutput's fields in its order, as plain dicts (encoded once by the caller)."""
        rows = len(answers)
        if not self.spec.is_classifier:
            return [{"name": "predict", "shape": [rows], "datatype": "FP64",
                     "data": [a["prediction"] for a in answers]}]
        return [
            {"name": "predict", "shape": [rows], "datatype": "BYTES",
             "data": [a["prediction"] for a in answers]},
            {"name": "predict_proba", "shape": [rows, len(self.classes)], "datatype": "FP64",
             "data": [a["probabilities"][c] for a in answers for c in self.classes]},
        ]
