"""Append-only capture of what the service scores, off the request path.

The request path only puts a line on an in-memory queue (logging.QueueHandler); a listener
thread writes it to a size-rotated JSON-lines file (logging.handlers.RotatingFileHandler),
one file per worker process so that no two processes share a file. `close()` drains the
queue, so nothing accepted is lost at shutdown. Retention: at most
(backup_count + 1) x max_bytes per worker; older data is deleted by rotation.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import time
from pathlib import Path
from typing import Any

CAPTURE_GLOB = "capture-*.jsonl*"


class PredictionCapture:
    def __init__(self, directory: Path, *, model_name: str, model_version: str,
                 max_bytes: int, backup_count: int, exclude: set[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"capture-{os.getpid()}.jsonl"
        self.model_name = model_name
        self.model_version = model_version
        self.exclude = exclude
        handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._logger = logging.getLogger(f"tabular.capture.{os.getpid()}.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(logging.handlers.QueueHandler(self._queue))
        self._listener.start()

    def record(self, records: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
        now = time.time()
        for features, answer in zip(records, answers, strict=True):
            line = {
                "ts": now, "model_name": self.model_name, "model_version": self.model_version,
                "features": {k: v for k, v in features.items() if k not in self.exclude},
                "prediction": answer["prediction"],
            }
            if "probability" in answer:
                line["probability"] = answer["probability"]
            if "shadow" in answer:  # the shadow challenger's answer (serving/shadow.py)
                line["shadow"] = {k: v for k, v in answer["shadow"].items()
                                  if k in ("model_version", "prediction", "probability")}
            self._logger.info(json.dumps(line))

    def close(self) -> None:
        """Write out everything queued, then stop the writer thread."""
        self._listener.stop()
        for handler in self._listener.handlers:
            handler.close()


def read_capture(directory: Path, model_name: str, last: int) -> list[dict[str, Any]]:
    """The `last` captured lines of a model, newest files last, across all workers' files."""
    files = sorted(directory.glob(CAPTURE_GLOB), key=lambda p: p.stat().st_mtime)
    lines: list[dict[str, Any]] = []
    for path in reversed(files):
        with path.open(encoding="utf-8") as handle:
            found = [json.loads(line) for line in handle if line.strip()]
        lines = [r for r in found if r.get("model_name") == model_name] + lines
        if len(lines) >= last:
            break
    lines.sort(key=lambda r: r["ts"])
    return lines[-last:]
