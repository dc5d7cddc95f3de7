"""Prometheus metrics of the prediction store: the writer's counts (per worker, summed on
/metrics) and the online performance read back from the store next to the hold-out metrics.

Online metrics are set by one worker per replica from a periodic query ("mostrecent": one
value per series whichever worker answers the scrape); every replica exports the same
values, so alert rules aggregate with max/min by model version, not sum.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

from contract.spec import DatasetSpec

STORE_WRITTEN = Counter(
    "tabular_store_written_records_total",
    "Predictions the prediction store acknowledged")
STORE_DROPPED = Counter(
    "tabular_store_dropped_records_total",
    "Predictions not stored: the writer's buffer was full (database down or slow)")
STORE_REJECTED = Counter(
    "tabular_store_rejected_records_total",
    "Predictions the database refused for their content, or lost at shutdown")
STORE_FAILED_WRITES = Counter(
    "tabular_store_failed_writes_total",
    "Batch writes that failed (database unavailable) and were retried")
STORE_PENDING = Gauge(
    "tabular_store_pending_records",
    "Predictions accepted and waiting for the database",
    multiprocess_mode="livesum")

_VERSION = ["model_name", "model_version"]
ONLINE_METRIC = Gauge(
    "tabular_online_metric",
    "Online metric over the newest labelled predictions (POST /feedback) of a version",
    [*_VERSION, "metric"], multiprocess_mode="mostrecent")
ONLINE_LABELLED = Gauge(
    "tabular_online_labelled_predictions",
    "Labelled predictions the online metrics of a version are computed over",
    _VERSION, multiprocess_mode="mostrecent")
HOLDOUT_METRIC = Gauge(
    "tabular_holdout_metric",
    "The served version's metric on its training hold-out set",
    [*_VERSION, "metric"], multiprocess_mode="mostrecent")
SHORTFALL = Gauge(
    "tabular_online_selection_shortfall_ratio",
    "How much worse the online selection metric is than the hold-out one, relative to "
    "the hold-out value (0.05: 5% worse; negative: better)",
    [*_VERSION, "metric"], multiprocess_mode="mostrecent")

# Online metrics are computed under these names (store/performance.py).
ONLINE_NAME = {"roc_auc_ovr": "roc_auc"}


def online_name(selection_metric: str) -> str:
    return ONLINE_NAME.get(selection_metric, selection_metric)


def shortfall(spec: DatasetSpec, online: float, holdout: float) -> float | None:
    if holdout == 0:
        return None
    worse_by = holdout - online if spec.higher_is_better else online - holdout
    return worse_by / abs(holdout)


def selection_summary(spec: DatasetSpec, online: dict[str, float],
                      holdout: dict[str, Any] | None) -> dict[str, Any]:
    """The selection metric online and at hold-out, and the relative shortfall."""
    name = spec.selection_metric
    value = online.get(online_name(name))
    reference = (holdout or {}).get(name)
    ratio = (shortfall(spec, value, float(reference))
             if value is not None and isinstance(reference, int | float) else None)
    return {"metric": name, "higher_is_better": spec.higher_is_better, "online": value,
            "holdout": reference, "shortfall_ratio": ratio}


def export_holdout(name: str, version: str, holdout: dict[str, Any] | None) -> None:
    for metric, value in (holdout or {}).items():
        if isinstance(value, int | float):
            HOLDOUT_METRIC.labels(name, version, metric).set(float(value))


def export_performance(spec: DatasetSpec, name: str, served_version: str,
                       versions: list[dict[str, Any]]) -> None:
    """Gauges from the /performance answer's `versions`."""
    for entry in versions:
        version = entry["model_version"]
        ONLINE_LABELLED.labels(name, version).set(entry["labelled"])
        for metric, value in entry["online_metrics"].items():
            ONLINE_METRIC.labels(name, version, metric).set(value)
        ratio = entry["selection"]["shortfall_ratio"]
        if version == served_version and ratio is not None:
            SHORTFALL.labels(name, version, spec.selection_metric).set(ratio)
