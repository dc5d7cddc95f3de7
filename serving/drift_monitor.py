"""The service's periodic drift check: captured records vs the model's reference sample.

Runs in one API worker, in a thread, every `drift.interval_s`; writes the Evidently HTML
report and a JSON summary next to the capture and exports the result as Prometheus gauges.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from serving.capture import read_capture
from serving.config import MonitoringConfig
from serving.drift import (
    REPORT_FILE,
    SUMMARY_FILE,
    DriftSummary,
    captured_frame,
    compute_drift,
    write_summary,
)
from serving.metrics import (
    DRIFT_DETECTED,
    DRIFT_LAST_CHECK,
    DRIFT_SHARE,
    DRIFT_WINDOW_ROWS,
    FEATURE_DRIFT_SCORE,
    FEATURE_DRIFTED,
)
from serving.model_store import ServedModel

logger = logging.getLogger("tabular.drift")


class DriftMonitor:
    def __init__(self, served: ServedModel, config: MonitoringConfig) -> None:
        self.served = served
        self.config = config
        self.out_dir = config.capture_dir / "drift" / served.name
        self.report_path = self.out_dir / REPORT_FILE
        self.summary_path = self.out_dir / SUMMARY_FILE
        self._reference: Any = None
        self.last_error: str | None = None

    def _reference_sample(self) -> Any:
        if self._reference is None:
            import bentoml

            self._reference = bentoml.models.get(self.served.tag).custom_objects[
                "reference_sample"]
        return self._reference

    @staticmethod
    def available() -> bool:
        """Evidently is installed (it is left out of the slim container image)."""
        import importlib.util

        return importlib.util.find_spec("evidently") is not None

    def check(self) -> DriftSummary | None:
        """One check now (blocking); None when too few records were captured yet."""
        drift = self.config.drift
        lines = read_capture(self.config.capture_dir, self.served.name, drift.window_rows)
        lines = [line for line in lines if line.get("model_version") == self.served.version]
        if len(lines) < drift.min_rows:
            self.last_error = (f"{len(lines)} captured rows of {self.served.tag}, "
                               f"need {drift.min_rows}")
            return None
        summary = compute_drift(
            self.served.spec, self._reference_sample(), captured_frame(lines),
            model_name=self.served.name, model_version=self.served.version,
            share_threshold=drift.drift_share, report_path=self.report_path,
        )
        write_summary(summary, self.out_dir)
        self.export(summary)
        self.last_error = None
        return summary

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

    @staticmethod
    def preload() -> None:
        """Import Evidently now (about 100 MiB and 3 s here) instead of at the first check, so
        the worker reaches its working memory at start, not in a step minutes later (which
        looks like a leak to a soak test and to a memory alert)."""
        import evidently.presets  # noqa: F401

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.preload)  # off the event loop: serving goes on
        while True:
            await asyncio.sleep(self.config.drift.interval_s)
            try:
                await loop.run_in_executor(None, self.check)
            except Exception:  # a failed check must never take the service down
                logger.exception("drift check failed")
                self.last_error = "drift check failed; see the service log"

    def latest(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return None

    def status(self) -> dict[str, Any]:
        return {"capture_dir": str(self.config.capture_dir),
                "interval_s": self.config.drift.interval_s,
                "min_rows": self.config.drift.min_rows, "last_error": self.last_error}
