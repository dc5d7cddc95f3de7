"""Ready means every API worker of this server has started, not just the one that answers.

The workers share one listening socket, and a worker accepts every connection that is
waiting when it wakes. Reported ready as soon as one worker could answer, a server gets its
clients' kept-alive connections while the other workers are still loading the model, and
they all stay on that worker: measured here, 64 of 64 connections on one of two workers,
which then served 1,140 req/s on one core instead of about 1,700 on two. In Kubernetes the
readiness probe is what lets the pod's first connections in, so it waits for all of them.

Each worker marks itself started with a file in a directory named after the server process
(the workers' parent, with its start time, so that a reused PID cannot inherit marks).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _server_id() -> str:
    parent = os.getppid()
    try:  # field 22 of /proc/PID/stat: the start time, in clock ticks since boot
        started = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "0"
    return f"{parent}-{started}"


class WorkerReadiness:
    def __init__(self, workers: int, worker_index: int | None,
                 directory: Path | None = None) -> None:
        # worker_index None: not started by `bentoml serve` with workers (one process).
        self.workers = workers if worker_index is not None else 1
        self.worker_index = worker_index or 1
        self.directory = directory or (
            Path(tempfile.gettempdir()) / f"tabular-workers-{_server_id()}")
        self._all = False

    def mark_started(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / str(self.worker_index)).touch()

    def all_started(self) -> bool:
        """True once every worker has called mark_started (then cached: a probe is cheap)."""
        if not self._all:
            try:
                started = {p.name for p in self.directory.iterdir()}
            except OSError:
                return False
            self._all = {str(i) for i in range(1, self.workers + 1)} <= started
        return self._all
