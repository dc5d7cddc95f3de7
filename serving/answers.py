"""The API's answers from the model's output rows: the JSON answer per record and the Open
Inference Protocol (V2) output tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.spec import DatasetSpec
from serving.config import RiskThresholds
from serving.v2 import InferOutput


@dataclass(frozen=True)
class Formatter:
    """Turns one row of model output into the API's answer for that record."""

    spec: DatasetSpec
    classes: list[str]  # the spec's class order: the scorer orders its columns so
    risk: RiskThresholds
    model_name: str
    model_version: str

    def answer(self, row: np.ndarray | float) -> dict[str, Any]:
        base = {"model_name": self.model_name, "model_version": self.model_version}
        if not self.spec.is_classifier:
            return base | {"prediction": float(row)}
        # tolist and max over the dict: a few classes are cheaper in Python than through
        # NumPy's per-call dispatch; max keeps the first of tied classes, as argmax does.
        values = np.asarray(row).tolist()
        probabilities = dict(zip(self.classes, values, strict=True))
        answer = base | {
            "prediction": max(probabilities, key=probabilities.__getitem__),
            "probabilities": probabilities,
        }
        if self.spec.task == "binary":
            positive = probabilities[self.spec.target.positive_class or ""]
            answer |= {"probability": positive, "risk_level": self.risk.level(positive)}
        return answer

    def v2_outputs(self, answers: list[dict[str, Any]]) -> list[InferOutput]:
        """`predict` ([N]) and, for classifiers, `predict_proba` ([N, classes], row-major)."""
        rows = len(answers)
        if not self.spec.is_classifier:
            return [InferOutput(name="predict", shape=[rows], datatype="FP64",
                                data=[a["prediction"] for a in answers])]
        return [
            InferOutput(name="predict", shape=[rows], datatype="BYTES",
                        data=[a["prediction"] for a in answers]),
            InferOutput(name="predict_proba", shape=[rows, len(self.classes)], datatype="FP64",
                        data=[a["probabilities"][c] for a in answers for c in self.classes]),
        ]
