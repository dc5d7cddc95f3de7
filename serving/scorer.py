"""The model call: records in, probabilities (spec class order) or values out, with metrics.

The model is a Predictor (inference/predictor.py): the compiled form or the pipeline.

Used by the model runner service (BentoML adaptive batching) and by the in-process
micro-batcher alike, so both modes score and count identically.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from inference.predictor import Predictor
from serving.metrics import (
    CONFIDENCE,
    FEW,
    MODEL_CALL_ROWS,
    MODEL_CALL_SECONDS,
    MODEL_READY,
    PREDICTIONS,
    observe_many,
    predicted_value_histogram,
)
from serving.model_store import ServedModel


class ModelScorer:
    """A Predictor (compiled or scikit-learn) with the spec's class order and the metrics."""

    def __init__(self, served: ServedModel, predictor: Predictor) -> None:
        self.served = served
        self.spec = served.spec
        self.predictor = predictor
        self.engine = predictor.engine
        self.classifier = served.spec.is_classifier
        labels = {"model_name": served.name, "model_version": served.version}
        self.call_seconds = MODEL_CALL_SECONDS.labels(**labels)
        self.call_rows = MODEL_CALL_ROWS.labels(**labels)
        if self.classifier:
            self.confidence = CONFIDENCE.labels(**labels)
            # Columns in the spec's class order, whatever order the estimator learned.
            order = list(predictor.classes or [])
            self.columns = [order.index(c) for c in served.classes]
            # Children looked up once: labels() per call was most of the counting's cost.
            self.predicted = [PREDICTIONS.labels(**labels, predicted_class=c)
                              for c in served.classes]
        else:
            target = served.reference[served.spec.target.name].to_numpy(dtype=float)
            buckets = np.quantile(target, np.linspace(0.05, 0.95, 10)).round(6)
            self.values = predicted_value_histogram(buckets).labels(**labels)
            self.predicted_values = PREDICTIONS.labels(**labels, predicted_class="value")
        MODEL_READY.labels(**labels).set(1)

    def __call__(self, records: list[dict[str, Any]]) -> np.ndarray:
        start = time.perf_counter()
        out = self.predictor.predict(records)
        if self.classifier:
            out = out[:, self.columns]
        self.call_seconds.observe(time.perf_counter() - start)
        self.call_rows.observe(len(records))
        self._count(out)
        return out

    def _count(self, out: np.ndarray) -> None:
        if self.classifier:
            winners = out.argmax(axis=1)
            if len(winners) <= FEW:  # fewer NumPy calls: a call of a few rows is the norm
                for index in winners.tolist():
                    self.predicted[index].inc()
            else:
                counts = np.bincount(winners, minlength=len(self.predicted))
                for index in np.flatnonzero(counts).tolist():
                    self.predicted[index].inc(int(counts[index]))
            observe_many(self.confidence, out.max(axis=1))
        else:
            self.predicted_values.inc(len(out))
            observe_many(self.values, out)
