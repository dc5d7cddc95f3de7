"""The service's own Prometheus metrics, beside BentoML's request and batching metrics.

Defined at import so every worker process registers them; BentoML runs prometheus_client
in multiprocess mode and merges the workers' values on /metrics.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter(
    "tabular_predictions_total",
    "Records scored, by model, version and predicted class ('value' for regressors)",
    labelnames=["model_name", "model_version", "predicted_class"],
)
CONFIDENCE = Histogram(
    "tabular_prediction_confidence",
    "Probability of the predicted class (classifiers)",
    labelnames=["model_name", "model_version"],
    buckets=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
VALIDATION_FAILURES = Counter(
    "tabular_validation_failures_total",
    "Rejected request fields, by endpoint, field and rule broken",
    labelnames=["endpoint", "field", "rule"],
)
MODEL_CALL_SECONDS = Histogram(
    "tabular_model_call_seconds",
    "Time spent in the pipeline per model call (one call scores a batch)",
    labelnames=["model_name", "model_version"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
MODEL_CALL_ROWS = Histogram(
    "tabular_model_call_rows",
    "Rows scored per model call: > 1 means batching works",
    labelnames=["model_name", "model_version"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
SHED_REQUESTS = Counter(
    "tabular_shed_requests_total",
    "Requests refused unscored with 503 to stay within the latency bound, by endpoint and "
    "reason (in_flight: over max_in_flight on arrival; wait: max_wait_ms passed before the "
    "model call)",
    labelnames=["endpoint", "reason"],
)


# Drift: set by the one worker that runs the periodic check; "mostrecent" so that /metrics
# shows one value per series whichever worker answers the scrape.
DRIFT_SHARE = Gauge(
    "tabular_drift_share",
    "Share of features whose distribution drifted (latest check)",
    ["model_name", "model_version"], multiprocess_mode="mostrecent",
)
DRIFT_DETECTED = Gauge(
    "tabular_drift_detected",
    "1 if the share of drifted features reached the configured drift_share (latest check)",
    ["model_name", "model_version"], multiprocess_mode="mostrecent",
)
FEATURE_DRIFT_SCORE = Gauge(
    "tabular_feature_drift_score",
    "Per-feature drift statistic of the latest check (p-value or distance, see method)",
    ["model_name", "model_version", "feature", "method"], multiprocess_mode="mostrecent",
)
FEATURE_DRIFTED = Gauge(
    "tabular_feature_drifted",
    "1 if the feature drifted in the latest check",
    ["model_name", "model_version", "feature"], multiprocess_mode="mostrecent",
)
DRIFT_WINDOW_ROWS = Gauge(
    "tabular_drift_window_rows",
    "Captured rows compared with the reference sample in the latest check",
    ["model_name", "model_version"], multiprocess_mode="mostrecent",
)
DRIFT_LAST_CHECK = Gauge(
    "tabular_drift_last_check_timestamp_seconds",
    "Unix time of the latest drift check",
    ["model_name", "model_version"], multiprocess_mode="mostrecent",
)


MODEL_READY = Gauge(
    "tabular_model_ready",
    "1 once this process has loaded the model it serves",
    ["model_name", "model_version"], multiprocess_mode="max",
)


def predicted_value_histogram(buckets: Iterable[float]) -> Any:
    return Histogram(
        "tabular_predicted_value",
        "Predicted value (regressors); buckets from the training target's quantiles",
        labelnames=["model_name", "model_version"],
        buckets=tuple(sorted(set(buckets))),
    )


def _field_of(loc: list[Any], fields: set[str]) -> str:
    named = [str(part) for part in loc if str(part) in fields]
    return named[-1] if named else ".".join(str(p) for p in loc) or "body"


class ValidationCounter:
    """Counts the fields named in a 400 answer's `detail` (pydantic's error list)."""

    def __init__(self, fields: set[str]) -> None:
        self.fields = fields

    def count(self, path: str, body: bytes) -> None:
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if not isinstance(detail, list) or not detail:
            VALIDATION_FAILURES.labels(endpoint=path, field="body", rule="malformed").inc()
            return
        for error in detail:
            VALIDATION_FAILURES.labels(
                endpoint=path,
                field=_field_of(list(error.get("loc", [])), self.fields),
                rule=str(error.get("type", "invalid")),
            ).inc()

    def answered(self, path: str, response: Any) -> None:
        """For answers made outside the middleware (serving/fast_path.py)."""
        if response.status_code == 400:
            self.count(path, bytes(response.body))


class ValidationMetricsMiddleware:
    """Counts the fields named in 400 answers of the prediction endpoints.

    BentoML validates the body before our code runs, so its answer is the only place the
    failed fields are known. Placed inside the fast path (serving/fast_path.py): only the
    requests it hands on to the routes pay for watching their answers; the fast path counts
    its own 400s through `ValidationCounter.answered`.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], paths: set[str],
                 counter: ValidationCounter) -> None:
        self.app = app
        self.paths = paths
        self.counter = counter

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        status = 0
        body: list[bytes] = []

        async def capture(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 400:
                body.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if status == 400:  # validation; 401/413/415 come from the request guard
            self.counter.count(scope["path"], b"".join(body))


FEW = 4  # values observed one by one: NumPy's per-call overhead exceeds two increments


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """`histogram.observe(v)` for every v, with one increment per bucket hit and one of the
    sum, instead of two per value: in multiprocess mode each increment takes a lock and
    writes the mmap file, and observing each row's confidence was a tenth of a one-row
    request's CPU. Reads the child's bucket values (prometheus_client's private fields,
    stable since 0.4); without them, observes one by one."""
    values = np.asarray(values, dtype=np.float64).ravel()
    bounds, buckets, total = (getattr(histogram, name, None)
                              for name in ("_upper_bounds", "_buckets", "_sum"))
    if (len(values) <= FEW or bounds is None or buckets is None or total is None
            or len(buckets) != len(bounds)):
        for value in values.tolist():
            histogram.observe(value)
        return
    # observe() counts a value in the first bucket whose bound is >= it (the last is +Inf).
    counts = np.bincount(np.searchsorted(bounds, values, side="left"),
                         minlength=len(bounds))
    total.inc(float(values.sum()))
    for index in np.flatnonzero(counts).tolist():
        buckets[index].inc(int(counts[index]))
