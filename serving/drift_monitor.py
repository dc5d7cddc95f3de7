"""The service's periodic drift check: captured records vs the model's reference sample.

Started by one API worker every `drift.interval_s` (and by POST /drift/check) as a child
process; the child writes the Evidently HTML report and a JSON summary next to the capture,
and the worker exports the result as Prometheus gauges.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from serving.config import MonitoringConfig
from serving.drift import REPORT_FILE, SUMMARY_FILE, TOO_FEW_ROWS, DriftSummary
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
CHECK_TIMEOUT_S = 600
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where `serving` is importable


class DriftMonitor:
    def __init__(self, served: ServedModel, config: MonitoringConfig) -> None:
        self.served = served
        self.config = config
        self.out_dir = config.capture_dir / "drift" / served.name
        self.report_path = self.out_dir / REPORT_FILE
        self.summary_path = self.out_dir / SUMMARY_FILE
        self.last_error: str | None = None

    @staticmethod
    def available() -> bool:
        """Evidently is installed (it is left out of the slim container image)."""
        import importlib.util

        return importlib.util.find_spec("evidently") is not None

    def check(self) -> DriftSummary | None:
        """One check now (blocking); None when too few records were captured yet.

        The check runs `python -m serving.drift` in a child process at low priority: in a
        thread of this worker, Evidently held the GIL for seconds, pausing the event loop
        (the soak's latency spikes at every check), and it added 100 MiB and 175,000
        objects to every garbage collection of the worker.
        """
        drift = self.config.drift
        command = ["nice", "-n", "10", sys.executable, "-m", "serving.drift",
                   "--model", self.served.tag, "--capture-dir", str(self.config.capture_dir),
                   "--window", str(drift.window_rows), "--min-rows", str(drift.min_rows),
                   "--drift-share", str(drift.drift_share), "--out", str(self.out_dir)]
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S, check=False)
        if done.returncode == TOO_FEW_ROWS:
            self.last_error = done.stderr.strip().splitlines()[-1]
            return None
        if done.returncode != 0:
            raise RuntimeError(f"drift check exited {done.returncode}: {done.stderr[-2000:]}")
        summary = DriftSummary.from_dict(json.loads(self.summary_path.read_text()))
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

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
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
