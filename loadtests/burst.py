"""A bounded burst of concurrent single-record requests against a running service.

Usage: python -m loadtests.burst --url http://127.0.0.1:3000 [--requests 5000] [--clients 64]

Records come from the served model's own example (GET /model_info is not needed: the
OpenAPI document carries a valid example record). Loopback only; stops after --requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiohttp
import httpx

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class BurstResult:
    requests: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)

    @property
    def failures(self) -> int:
        return self.requests - self.statuses.get(200, 0)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def summary(self) -> dict:
        return {
            "requests": self.requests, "failures": self.failures,
            "statuses": dict(self.statuses), "errors": dict(self.errors),
            "seconds": round(self.seconds, 2), "requests_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(0.5), 1), "p95_ms": round(self.percentile(0.95), 1),
            "p99_ms": round(self.percentile(0.99), 1),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else 0,
        }


def example_record(url: str) -> dict:
    """The record model's example from the service's OpenAPI document."""
    doc = httpx.get(f"{url}/docs.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    record = next(s for name, s in schemas.items()
                  if name.endswith("Record") and "example" in s)
    return record["example"]


async def burst(url: str, records: list[dict], total: int, clients: int,
                timeout: float = 60.0) -> BurstResult:
    if urlparse(url).hostname not in LOOPBACK:
        raise ValueError(f"{url}: load goes to loopback addresses only")
    result = BurstResult(requests=total, seconds=0.0)
    counter = iter(range(total))
    payloads = [json.dumps(r).encode() for r in records]
    headers = {"Content-Type": "application/json"}

    async def client(http: aiohttp.ClientSession) -> None:
        for i in counter:
            start = time.perf_counter()
            try:
                async with http.post(f"{url}/predict", data=payloads[i % len(payloads)],
                                     headers=headers) as response:
                    await response.read()
                    result.statuses[response.status] += 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                result.errors[type(exc).__name__] += 1
                continue
            result.latencies_ms.append((time.perf_counter() - start) * 1000)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args(argv)
    record = example_record(args.url)
    outcome = asyncio.run(burst(args.url, [record], args.requests, args.clients))
    print(json.dumps(outcome.summary(), indent=2))
    return 0 if outcome.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
