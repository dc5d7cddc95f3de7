"""Load generators for benchmarks, soak and tests: closed loop (N clients, no wait) and open
loop (a fixed offered rate). aiohttp, one process: its own CPU use is reported beside the
results. Loopback targets only; every run is bounded by a request count or a deadline.

A request is a JSON body for the given URL, or a `Request` (a path under it, an encoded
body and the status that counts as success, e.g. 400 for a deliberately invalid record).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import aiohttp

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
HEADERS = {"Content-Type": "application/json"}


def check_loopback(url: str, what: str = "load") -> None:
    """Refuse a target that is not on this machine: these tools must not load anyone else."""
    if urlparse(url).hostname not in LOOPBACK:
        raise ValueError(f"{url}: {what} goes to loopback addresses only")


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0 < q <= 1); 0.0 for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass(frozen=True)
class Request:
    """POST `body` to the load's URL + `path`; any status but `expected` is a failure."""

    body: bytes
    path: str = ""
    expected: int = 200


def as_requests(bodies: Sequence[Any]) -> list[Request]:
    """`Request`s as they are; anything else is a JSON body for the URL itself."""
    return [b if isinstance(b, Request) else Request(json.dumps(b).encode()) for b in bodies]


@dataclass
class LoadResult:
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # no usable answer: exception names
    unexpected: Counter = field(default_factory=Counter)  # "503 (expected 200)" -> count
    latencies_ms: list[float] = field(default_factory=list)
    by_status_ms: dict[int, list[float]] = field(default_factory=dict)
    # Open loop with `bucket_s`: latencies by period of the scheduled send (0, 1, ...).
    by_bucket_ms: dict[int, list[float]] = field(default_factory=dict)
    rows_per_request: int = 1

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @classmethod
    def merged(cls, parts: Sequence[LoadResult]) -> LoadResult:
        """One result of several runs against the same endpoint (their seconds add up)."""
        out = cls(rows_per_request=parts[0].rows_per_request if parts else 1)
        for part in parts:
            out.seconds += part.seconds
            out.statuses += part.statuses
            out.errors += part.errors
            out.unexpected += part.unexpected
            out.latencies_ms += part.latencies_ms
            for status, values in part.by_status_ms.items():
                out.by_status_ms.setdefault(status, []).extend(values)
        return out

    @property
    def failures(self) -> int:
        return sum(self.errors.values()) + sum(self.unexpected.values())

    @property
    def failure_kinds(self) -> dict[str, int]:
        return dict(self.errors + self.unexpected)

    @property
    def throughput(self) -> float:
        return self.statuses.get(200, 0) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float, status: int | None = None) -> float:
        """Latency percentile of every answer, or of the answers with `status`."""
        values = self.latencies_ms if status is None else self.by_status_ms.get(status, [])
        return percentile(values, q)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "failures": self.failures,
            "statuses": dict(self.statuses), "errors": dict(self.errors),
            "seconds": round(self.seconds, 2), "requests_per_s": round(self.throughput, 1),
            "rows_per_s": round(self.throughput * self.rows_per_request, 1),
            "p50_ms": round(self.percentile(0.5), 1), "p95_ms": round(self.percentile(0.95), 1),
            "p99_ms": round(self.percentile(0.99), 1),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else 0,
        }


async def _send(http: aiohttp.ClientSession, url: str, request: Request, result: LoadResult,
                scheduled: float | None = None, bucket: int | None = None) -> None:
    """One request; its latency counts from `scheduled` (an open loop's planned send time,
    so a generator that falls behind shows as latency) or else from now."""
    start = time.perf_counter() if scheduled is None else scheduled
    try:
        async with http.post(url + request.path, data=request.body, headers=HEADERS) as response:
            await response.read()
            status = response.status
            if status == 503 and "Retry-After" not in response.headers:
                result.errors["503 without Retry-After"] += 1  # shedding must say when
                return
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.errors[type(exc).__name__] += 1
        return
    elapsed = (time.perf_counter() - start) * 1000
    result.statuses[status] += 1
    if status != request.expected:
        result.unexpected[f"{status} (expected {request.expected})"] += 1
    result.latencies_ms.append(elapsed)
    result.by_status_ms.setdefault(status, []).append(elapsed)
    if bucket is not None:
        result.by_bucket_ms.setdefault(bucket, []).append(elapsed)


async def closed_loop(
    url: str, bodies: Sequence[Any], clients: int, *, total: int | None = None,
    seconds: float | None = None, timeout: float = 60.0, rows_per_request: int = 1,
) -> LoadResult:
    """`clients` concurrent clients, each sending as soon as it is answered, until `total`
    requests were sent or `seconds` passed."""
    check_loopback(url)
    if total is None and seconds is None:
        raise ValueError("bound the run: give total or seconds")
    requests = as_requests(bodies)
    result = LoadResult(rows_per_request=rows_per_request)
    counter = iter(range(total)) if total is not None else iter(int, 1)
    deadline = time.perf_counter() + seconds if seconds is not None else float("inf")

    async def client(http: aiohttp.ClientSession) -> None:
        for i in counter:
            if time.perf_counter() >= deadline:
                return
            await _send(http, url, requests[i % len(requests)], result)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


async def open_loop(
    url: str, bodies: Sequence[Any], rate: float, seconds: float, timeout: float = 60.0,
    connections: int = 0, *, bucket_s: float | None = None, result: LoadResult | None = None,
) -> LoadResult:
    """Requests started at a fixed offered `rate` per second for `seconds`, whatever the
    answers' latency (so slow answers show as latency, not as a lower offered load).

    `connections` caps the kept-alive connections, as an ingress or a client library's
    pool does (0: a new connection whenever none is idle); a request waiting for one
    counts that wait as latency. `bucket_s` also groups latencies by period of the
    scheduled send (`by_bucket_ms`, e.g. per minute). `result` is filled as answers come
    (pass one to watch a long run from another thread)."""
    check_loopback(url)
    requests = as_requests(bodies)
    result = result if result is not None else LoadResult()
    count = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as http:
        start = time.perf_counter()
        pending: set[asyncio.Task] = set()  # finished sends drop out: long runs stay small
        for i in range(count):
            offset = i / rate
            delay = start + offset - time.perf_counter()
            # Behind schedule it still yields: answers that have arrived are read and timed
            # now, not after a burst of late sends (that wait would count as the server's).
            await asyncio.sleep(max(delay, 0.0))
            bucket = int(offset // bucket_s) if bucket_s else None
            task = asyncio.create_task(_send(http, url, requests[i % len(requests)], result,
                                             start + offset, bucket))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        result.seconds = time.perf_counter() - start
    return result
