"""Past capacity the service answers what it can within its bound and refuses the rest at
once (503 + Retry-After, counted), instead of queueing requests until the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests.loadgen import closed_loop, open_loop
from serving.config import load_serving_config
from tests.servers import Server, serve_dataset
from tests.service.test_service import records

pytestmark = pytest.mark.slow
OVERLOAD = load_serving_config().overload
# Kept-alive connections, as an ingress keeps to its upstream pods.
POOL = 512


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory) -> Iterator[Server]:
    # Prediction store on as configured, and the capture (on in tests). One API worker, the
    # scikit-learn pipeline and model calls of at most 8 rows: as configured (2 workers,
    # compiled model) the capacity here is 4,000-5,000 req/s, and even one worker with the
    # pipeline's 64-row calls made 1,700; twice that is more than one load-generator
    # process can offer on these 2 cores, and the test would measure the generator falling
    # behind (every latency, 503s included, in seconds), not the server. Shedding is per
    # worker, so one shows it.
    yield from serve_dataset(tmp_path_factory.mktemp("overload"), "heart",
                             config={"engine": "sklearn", "api_workers": 1,
                                     "batching": {"max_batch_size": 8}})


def shed_total(url: str) -> float:
    """tabular_shed_requests_total over every endpoint and reason; fails if absent."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = [s for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "tabular_shed_requests_total"]
    assert samples, "tabular_shed_requests_total is not exported"
    return sum(s.value for s in samples)


def test_twice_the_sustainable_rate_is_answered_or_refused_at_once(server: Server) -> None:
    url, bodies = server.url, records(server, 40)
    asyncio.run(closed_loop(f"{url}/predict", bodies, 64, seconds=3))  # warm up
    capacity = asyncio.run(closed_loop(f"{url}/predict", bodies, 64, seconds=8))
    # Answers only; on a starved CI machine even 64 clients may be refused some (503).
    assert capacity.errors == {} and set(capacity.statuses) <= {200, 503}, capacity.summary()
    assert capacity.throughput > 0, capacity.summary()
    shed_before = shed_total(url)

    rate = 2 * capacity.throughput
    outcome = asyncio.run(open_loop(f"{url}/predict", bodies, rate, seconds=12, timeout=30,
                                    connections=POOL))
    summary = outcome.summary()
    print(f"capacity {capacity.throughput:.0f} req/s; offered {rate:.0f} req/s:", summary,
          f"p99 of 200s {outcome.percentile(0.99, 200):.0f} ms,",
          f"p99 of 503s {outcome.percentile(0.99, 503):.0f} ms")
    # Only answers: no timeouts, no refused or dropped connections, every 503 with Retry-After.
    assert outcome.errors == {}, summary
    assert set(outcome.statuses) <= {200, 503}, summary
    served, refused = outcome.statuses[200], outcome.statuses[503]
    assert refused >= 0.1 * outcome.requests, f"twice the capacity shed nothing: {summary}"
    assert served >= 0.5 * capacity.throughput * 12, f"shedding starved the model: {summary}"
    # Accepted requests keep to a bound: max_wait_ms before the model call, plus the call
    # and HTTP; 3x leaves room for a loaded CI machine. A queue fails it (before shedding:
    # p99 17 s, then timeouts), and so did all connections on one worker (before
    # serving/listen_sockets.py: 0.2-5 s between runs).
    assert outcome.percentile(0.99, 200) <= 3 * OVERLOAD.max_wait_ms, summary
    assert outcome.percentile(0.99, 503) <= 3 * OVERLOAD.max_wait_ms, summary
    # Every refusal was counted on /metrics.
    assert shed_total(url) - shed_before == refused
    # And the service is back at once.
    answer = httpx.post(f"{url}/predict", json=bodies[0], timeout=5)
    assert answer.status_code == 200
