"""The service's side of the prediction store (store/): every scored record goes to the
store's background writer (the request path only appends to its buffer), and the store is
read back for history, feedback, online performance and the fleet-wide drift run.

A database that is down at start-up does not stop the service: it starts with the writer
buffering, and the schema migration is retried in the background until it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from serving import store_metrics as m
from serving.config import ServingStoreConfig
from serving.model_store import ServedModel
from store import PredictionRecord, PredictionStore, WriterStats, resolve_url
from store.config import redact

logger = logging.getLogger("tabular.store")
MIGRATE_RETRY_S = 10.0
STATS_SYNC_S = 1.0


def open_store(url: str) -> PredictionStore:
    """The store, migrated to the newest schema; if the database is unreachable now, the
    store anyway (its writer buffers) and a thread that migrates once it answers."""
    try:
        return PredictionStore.from_url(url)
    except Exception as exc:  # any failure to reach or migrate: never fail start-up for it
        logger.error("prediction store %s unavailable at start-up (%s: %s); buffering "
                     "predictions and retrying", redact(url), type(exc).__name__, exc)
    store = PredictionStore.from_url(url, migrate_schema=False)
    threading.Thread(target=_migrate_when_up, args=(store,), name="store-migrate",
                     daemon=True).start()
    return store


def _migrate_when_up(store: PredictionStore) -> None:
    from store.migrate import upgrade

    while True:
        try:
            upgrade(store.engine)
            logger.info("prediction store reachable: schema migrated")
            return
        except Exception as exc:  # keep trying: the database may come back any time
            logger.warning("prediction store still unavailable (%s)", type(exc).__name__)
            threading.Event().wait(MIGRATE_RETRY_S)


class PredictionLog:
    def __init__(self, config: ServingStoreConfig, served: ServedModel) -> None:
        self.config = config
        self.served = served
        self.url = resolve_url(config.url)
        self.store = open_store(self.url)
        self.writer = self.store.writer(
            buffer_size=config.buffer_size, batch_size=config.batch_size,
            flush_interval_s=config.flush_interval_s, exclude_features=config.exclude_features,
            on_dropped=m.STORE_DROPPED.inc, on_written=m.STORE_WRITTEN.inc)
        self._synced = WriterStats(0, 0, 0, 0, 0, 0, 0)
        m.export_holdout(served.name, served.version, self.holdout)
        logger.info("prediction store: %s (%s)", redact(self.url), self.store.dialect)

    @property
    def holdout(self) -> dict[str, Any] | None:
        return self.served.metadata.get("holdout_metrics")

    def record(self, endpoint: str, ids: Sequence[str], at: datetime,
               records: Sequence[dict[str, Any]], answers: Sequence[dict[str, Any]]) -> None:
        """Queue the scored records (O(1) each; never blocks, never raises)."""
        name, version, submit = self.served.name, self.served.version, self.writer.submit
        for request_id, features, answer in zip(ids, records, answers, strict=True):
            submit(PredictionRecord(request_id, at, name, version, endpoint, features, answer))

    def performance(self, window: int | None = None,
                    model_version: str | None = None) -> dict[str, Any]:
        """Online metrics per model version next to the served version's hold-out metrics
        (blocking: one query per version)."""
        spec, served = self.served.spec, self.served
        found = self.store.performance(
            served.name, window=window or self.config.performance_window,
            model_version=model_version, classes=served.classes or None)
        versions = []
        for perf in found:
            holdout = self.holdout if perf.model_version == served.version else None
            versions.append({
                "model_version": perf.model_version, "serving": perf.model_version ==
                served.version, "labelled": perf.labelled, "first": perf.first,
                "last": perf.last, "online_metrics": perf.metrics, "skipped": perf.skipped,
                "holdout_metrics": holdout,
                "selection": m.selection_summary(spec, perf.metrics, holdout)})
        if model_version in (None, served.version) and served.version not in \
                {v["model_version"] for v in versions}:
            versions.insert(0, {
                "model_version": served.version, "serving": True, "labelled": 0,
                "first": None, "last": None, "online_metrics": {}, "skipped": {},
                "holdout_metrics": self.holdout,
                "selection": m.selection_summary(spec, {}, self.holdout)})
        return {"model_name": served.name, "task": spec.task,
                "selection_metric": spec.selection_metric,
                "window": window or self.config.performance_window, "versions": versions}

    def refresh_metrics(self) -> dict[str, Any] | None:
        """Online metrics onto /metrics; the latest drift run of the served version
        (blocking)."""
        answer = self.performance()
        m.export_performance(self.served.spec, self.served.name, self.served.version,
                             answer["versions"])
        return self.store.latest_drift_run(self.served.name, self.served.version)

    def sync_stats(self) -> None:
        """The writer's counts that have no callback, onto /metrics."""
        now, before = self.writer.stats, self._synced
        m.STORE_REJECTED.inc(now.rejected + now.lost - before.rejected - before.lost)
        m.STORE_FAILED_WRITES.inc(now.failed_attempts - before.failed_attempts)
        m.STORE_PENDING.set(now.pending)
        self._synced = now

    def start(self, on_drift_run: Callable[[dict[str, Any]], None]) -> asyncio.Task:
        """The background loop; online metrics and the drift run are read by one worker per
        replica (the gauges are "mostrecent": one writer is enough)."""
        import bentoml

        reader = bentoml.server_context.worker_index in (None, 1)
        return asyncio.get_running_loop().create_task(
            self.run_forever(on_drift_run if reader else None))

    async def run_forever(self, on_drift_run: Any | None = None) -> None:
        """Writer counts every second; with `on_drift_run` (one worker per replica), online
        metrics and the latest drift run every metrics_interval_s, off the event loop."""
        loop = asyncio.get_running_loop()
        next_refresh = 0.0
        while True:
            self.sync_stats()
            if on_drift_run is not None and loop.time() >= next_refresh:
                next_refresh = loop.time() + self.config.metrics_interval_s
                try:
                    run = await loop.run_in_executor(None, self.refresh_metrics)
                    if run is not None:
                        on_drift_run(run["summary"])
                except Exception as exc:  # a store that is down must not stop the loop
                    logger.warning("online metrics not refreshed: %s", type(exc).__name__)
            await asyncio.sleep(STATS_SYNC_S)

    def close(self) -> WriterStats:
        """Write out every accepted record (shutdown)."""
        stats = self.writer.close()
        self.sync_stats()
        logger.info("prediction store closed: %d written, %d dropped, %d rejected, %d lost",
                    stats.written, stats.dropped, stats.rejected, stats.lost)
        self.store.close()
        return stats
