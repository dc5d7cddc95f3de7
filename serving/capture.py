"""Append-only capture of what the service scores, off the request path.

The request path serialises the scored records (orjson, a few microseconds a line) and puts
the lines on an in-memory queue; a writer thread appends them in chunks to a size-rotated
JSON-lines file (logging.handlers.RotatingFileHandler), one file per worker process so that
no two processes share a file. `close()` drains the queue, so nothing accepted is lost at
shutdown. Retention: at most (backup_count + 1) x max_bytes per worker; older data is
deleted by rotation.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import orjson

CAPTURE_GLOB = "capture-*.jsonl*"
# Records per drain of the queue; their lines are written in chunks of at most a 20th of
# max_bytes (and 64 KB): one rotation check and one flush per chunk instead of per line,
# while a file still stays within max_bytes.
WRITE_BATCH = 1000
CHUNK_BYTES = 65_536
# Between drains the writer sleeps this long (unless closing), so that under load it wakes
# a few times a second for many records, not once per request.
DRAIN_INTERVAL_S = 0.1
_STOP = object()
logger = logging.getLogger("tabular.capture")


class PredictionCapture:
    def __init__(self, directory: Path, *, model_name: str, model_version: str,
                 max_bytes: int, backup_count: int, exclude: set[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"capture-{os.getpid()}.jsonl"
        self.model_name = model_name
        self.model_version = model_version
        self.exclude = exclude
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._chunk_bytes = max(1, min(CHUNK_BYTES, max_bytes // 20))
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def record(self, records: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
        """Queue the scored records' lines. Serialised here, not in the writer thread:
        Python work there competed with the request path for the GIL and cost more."""
        try:
            self._queue.put(self._lines(time.time(), records, answers))
        except Exception:  # a record that cannot be serialised: never the request's failure
            logger.exception("capture: record not written")

    def _lines(self, now: float, records: list[dict[str, Any]],
               answers: list[dict[str, Any]]) -> list[str]:
        lines = []
        for features, answer in zip(records, answers, strict=True):
            line = {
                "ts": now, "model_name": self.model_name, "model_version": self.model_version,
                "features": {k: v for k, v in features.items() if k not in self.exclude}
                if self.exclude else features,
                "prediction": answer["prediction"],
            }
            if "probability" in answer:
                line["probability"] = answer["probability"]
            if "shadow" in answer:  # the shadow challenger's answer (serving/shadow.py)
                line["shadow"] = {k: v for k, v in answer["shadow"].items()
                                  if k in ("model_version", "prediction", "probability")}
            lines.append(orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY).decode())
        return lines

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while len(items) < WRITE_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines: list[str] = []
            for item in items:
                if item is _STOP:
                    stopping = True  # still write what came before it
                    continue
                lines += item
            self._write(lines)
            self._closing.wait(DRAIN_INTERVAL_S)

    def _write(self, lines: list[str]) -> None:
        chunk: list[str] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) + 1 > self._chunk_bytes:
                self._emit(chunk)
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        if chunk:
            self._emit(chunk)

    def _emit(self, chunk: list[str]) -> None:
        self._handler.handle(logging.makeLogRecord({"msg": "\n".join(chunk)}))

    def close(self) -> None:
        """Write out everything queued, then stop the writer thread."""
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join()
        self._handler.close()


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
