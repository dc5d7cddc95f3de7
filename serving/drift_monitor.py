"""The service's periodic drift check: served records vs the model's reference sample.

Run for one API worker every `drift.interval_s` (and on POST /drift/check) in a child
process. With the prediction store (the default) the window is the store's newest
predictions, every replica's, and the summary and HTML report are saved there as a drift
run, which every replica serves and exports; without it, the JSON-lines capture is read
and the report and summary are files next to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from serving.config import MonitoringConfig
from serving.drift import REPORT_FILE, SUMMARY_FILE, DriftSummary, check_capture, check_store
from serving.metrics import (
    DRIFT_DETECTED,
    DRIFT_LAST_CHECK,
    DRIFT_SHARE,
    DRIFT_WINDOW_ROWS,
    FEATURE_DRIFT_SCORE,
    FEATURE_DRIFTED,
)
from serving.model_store import ServedModel
from serving.prediction_log import PredictionLog

logger = logging.getLogger("tabular.drift")
CHECK_TIMEOUT_S = 600


def _ready() -> bool:
    return True


def _drift_process_init() -> None:
    os.nice(10)  # serving first: a check may take longer on a busy pod, never the requests
    import evidently.presets  # noqa: F401  (once per child, not per check)


NOTHING_KEPT = ("neither the prediction store nor the capture keeps scored records "
                "(monitoring.store.enabled and monitoring.capture.enabled are both false): "
                "turn one on for drift checks")


class DriftMonitor:
    def __init__(self, served: ServedModel, config: MonitoringConfig,
                 log: PredictionLog | None = None) -> None:
        self.served = served
        self.config = config
        self.log = log  # the prediction store; None: the capture files
        self.out_dir = config.capture_dir / "drift" / served.name
        self.report_path = self.out_dir / REPORT_FILE
        self.summary_path = self.out_dir / SUMMARY_FILE
        self.last_error: str | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._one_at_a_time = threading.Lock()

    def keeps_records(self) -> bool:
        """Something keeps the scored records a check reads: the store or the capture."""
        return self.log is not None or self.config.capture.enabled

    @staticmethod
    def available() -> bool:
        """Evidently is installed (it is left out of the slim container image)."""
        import importlib.util

        return importlib.util.find_spec("evidently") is not None

    def check(self) -> DriftSummary | None:
        """One check now (blocking); None when too few records were captured yet.

        Checks run one at a time in a child process at low priority, which imports Evidently
        once and is reused: in a thread of this worker, Evidently held the GIL for seconds
        (the event loop paused: the soak's latency spikes at every check) and added 100 MiB
        and 175,000 objects to every garbage collection of the worker.
        """
        drift = self.config.drift
        with self._one_at_a_time:
            options = {"window": drift.window_rows, "min_rows": drift.min_rows,
                       "drift_share": drift.drift_share}
            try:
                if self.log is not None:
                    future = self._child().submit(check_store, self.served.tag, self.log.url,
                                                  **options)
                else:
                    future = self._child().submit(check_capture, self.served.tag,
                                                  self.config.capture_dir, self.out_dir,
                                                  **options)
                result = future.result(timeout=CHECK_TIMEOUT_S)
            except BrokenProcessPool:
                self._pool = None  # the child died (e.g. out of memory): a new one next time
                raise
        if isinstance(result, str):
            self.last_error = result
            return None
        self.export(result)
        self.last_error = None
        return result

    def start(self) -> None:
        """Start the child now and load Evidently in it (blocking, a few seconds), so that
        the worker's memory is what it will be from the start and the first check is quick."""
        with self._one_at_a_time:
            self._child().submit(_ready).result(timeout=CHECK_TIMEOUT_S)

    def warm(self) -> None:
        """start(), at the worker's start-up: a failure is logged, not raised (the service
        serves without drift checks), and the next check starts a child again."""
        try:
            self.start()
        except Exception:
            self.close()
            self._pool = None
            logger.exception("the drift check's child process did not start")

    def _child(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("forkserver"),
                initializer=_drift_process_init)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def export(self, summary: DriftSummary) -> None:
        labels = {"model_name": summary.model_name, "model_version": summary.model_version}
        DRIFT_SHARE.labels(**labels).set(summary.drift_share)
        DRIFT_DETECTED.labels(**labels).set(1.0 if summary.drift_detected else 0.0)
        DRIFT_WINDOW_ROWS.labels(**labels).set(summary.window_rows)
        DRIFT_LAST_CHECK.labels(**labels).set(summary.checked_at)
        for feature in summary.features:
            FEATURE_DRIFT_SCORE.labels(**labels, feature=feature.feature,
                                       method=feature.method).set(feature.score)
            FEATURE_DRIFTED.labels(**labels, feature=feature.feature).set(
                1.0 if feature.drifted else 0.0)

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.drift.interval_s)
            try:
                await loop.run_in_executor(None, self.check)
            except Exception:  # a failed check must never take the service down
                logger.exception("drift check failed")
                self.last_error = "drift check failed; see the service log"

    def export_stored(self, summary: dict[str, Any]) -> None:
        """Gauges from a drift run another replica or the CronJob saved to the store."""
        self.export(DriftSummary.from_dict(summary))

    def latest(self) -> dict[str, Any] | None:
        """The latest summary (blocking: with the store, a query)."""
        if self.log is not None:
            run = self.log.store.latest_drift_run(self.served.name, self.served.version)
            return run["summary"] if run is not None else None
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return None

    def report_html(self) -> str | None:
        """The latest check's HTML report (blocking)."""
        if self.log is not None:
            run = self.log.store.latest_drift_run(self.served.name, self.served.version,
                                                  with_report=True)
            return run["report_html"] if run is not None else None
        return self.report_path.read_text() if self.report_path.is_file() else None

    def status(self) -> dict[str, Any]:
        if not self.keeps_records():
            return {"source": None, "hint": NOTHING_KEPT}
        return {"source": "prediction store" if self.log is not None else "capture",
                "capture_dir": str(self.config.capture_dir),
                "interval_s": self.config.drift.interval_s,
                "min_rows": self.config.drift.min_rows, "last_error": self.last_error}
