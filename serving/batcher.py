"""Greedy micro-batching inside one worker process.

While the model scores one batch (in a worker thread), new requests queue; the next model
call takes everything queued, up to `max_rows`. No request waits for a timer: at low load a
request is scored alone at once, under load batches grow by themselves. Unlike batching in
a separate model service, nothing crosses a process boundary per request.

A request whose admission deadline (serving/overload.py) passes before its model call
starts is answered `Overloaded` instead of scored: under overload, the model's time goes to
requests that can still be answered within the bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from serving.overload import ADMISSION, Admission, Overloaded

Score = Callable[[list[dict[str, Any]]], np.ndarray]
Job = tuple[list[dict[str, Any]], asyncio.Future, Admission | None]


class MicroBatcher:
    def __init__(self, score: Score, max_rows: int, inline_max_rows: int = 0) -> None:
        self._score = score
        self.max_rows = max_rows
        # Batches this small are scored on the loop: a thread hop costs more than a
        # compiled model's call (the scorer must then take well under a millisecond).
        self.inline_max_rows = inline_max_rows
        self._pending: deque[Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def score(self, records: list[dict[str, Any]]) -> np.ndarray:
        admission = ADMISSION.get()
        if admission is not None and admission.expired():
            raise Overloaded("waited too long before reaching the model")
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        future: asyncio.Future = loop.create_future()
        self._pending.append((records, future, admission))
        assert self._wake is not None
        self._wake.set()
        return await future

    def _take(self) -> list[Job]:
        jobs: list[Job] = []
        rows = 0
        while self._pending:
            size = len(self._pending[0][0])
            if jobs and rows + size > self.max_rows:
                break
            job = self._pending.popleft()
            future, admission = job[1], job[2]
            if future.cancelled():  # the client went away: do not score its records
                continue
            if admission is not None and admission.expired():
                future.set_exception(Overloaded("waited too long for the model"))
                continue
            jobs.append(job)
            rows += size
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while jobs := self._take():
                records = [r for batch, _, _ in jobs for r in batch]
                try:
                    if len(records) <= self.inline_max_rows:
                        out = self._score(records)
                    else:
                        out = await loop.run_in_executor(self._executor, self._score, records)
                except Exception as exc:  # every caller of this batch gets the error
                    for _, future, _ in jobs:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for batch, future, _ in jobs:
                    if not future.done():
                        future.set_result(out[start:start + len(batch)])
                    start += len(batch)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
