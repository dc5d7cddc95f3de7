"""The load generator on its own, against a small in-process aiohttp app on loopback:
expected statuses, latency from the scheduled send, buckets, the loopback rule; and the
replay tool's rows, read through the training data loader."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from contract.spec import load_dataset_spec
from loadtests.loadgen import (
    LoadResult,
    Request,
    as_requests,
    check_loopback,
    closed_loop,
    open_loop,
    percentile,
)
from loadtests.replay import records_from_csv
from tests.conftest import CLEVELAND


async def with_app(run: Callable[[str], Awaitable]) -> object:
    """`run(url)` against an app: POST /ok answers 200, POST /bad 400, POST /shed 503
    (with Retry-After when the body says so), POST /slow 200 after 50 ms."""

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        if request.path == "/bad":
            return web.json_response({}, status=400)
        if request.path == "/shed":
            return web.json_response({}, status=503, headers=(
                {"Retry-After": "1"} if body.get("retry") else {}))
        if request.path == "/slow":
            await asyncio.sleep(0.05)
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/{name}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return await run(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (0.5, 0.95, 0.99, 1.0)] == [51, 96, 100, 100]
    assert percentile([], 0.99) == 0.0 and percentile([7.0], 0.5) == 7.0


@pytest.mark.parametrize("url", ["http://10.0.0.1:3000", "https://example.com/predict"])
def test_load_goes_to_loopback_only(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(url)
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(closed_loop(url, [{}], 1, total=1))
    for local in ("http://127.0.0.1:3000", "http://localhost", "http://[::1]:80/x"):
        check_loopback(local)


def test_plain_bodies_are_json_for_the_url_itself() -> None:
    mixed = as_requests([{"a": 1}, Request(b"{}", "/bad", 400)])
    assert mixed == [Request(b'{"a": 1}'), Request(b"{}", "/bad", 400)]


def test_open_loop_counts_unexpected_statuses_and_buckets_by_schedule() -> None:
    mix = [Request(b"{}", "/ok"), Request(b"{}", "/bad", expected=400),
           Request(b"{}", "/bad"), Request(json.dumps({"retry": True}).encode(), "/shed"),
           Request(b"{}", "/shed", expected=503)]
    result = asyncio.run(with_app(lambda url: open_loop(url, mix, rate=50, seconds=1,
                                                        bucket_s=0.5)))
    assert result.requests == 50
    assert result.statuses == {200: 10, 400: 20, 503: 10}
    # A 400 where 400 was expected is a success; a 503 without Retry-After is an error.
    assert result.unexpected == {"400 (expected 200)": 10, "503 (expected 200)": 10}
    assert result.errors == {"503 without Retry-After": 10}
    assert result.failures == 30 and result.failure_kinds == {
        "400 (expected 200)": 10, "503 (expected 200)": 10, "503 without Retry-After": 10}
    assert sorted(result.by_bucket_ms) == [0, 1]
    assert [len(v) for v in result.by_bucket_ms.values()] == [20, 20]


def test_open_loop_latency_counts_from_the_scheduled_send() -> None:
    # One connection for requests that take 50 ms each, offered every 20 ms: a queue
    # builds up in the client, and that wait is latency too.
    result = asyncio.run(with_app(lambda url: open_loop(f"{url}/slow", [{}], rate=50,
                                                        seconds=0.4, connections=1)))
    assert result.failures == 0 and result.requests == 20
    assert result.percentile(1.0) > 400  # the last waited for 19 others (~950 ms)


def test_closed_loop_sends_exactly_total() -> None:
    result = asyncio.run(with_app(lambda url: closed_loop(f"{url}/ok", [{"x": 1}], 4,
                                                          total=30)))
    assert result.statuses == {200: 30} and result.failures == 0 and result.throughput > 0


def test_replay_reads_rows_through_the_data_loader() -> None:
    spec = load_dataset_spec("heart")
    rows = records_from_csv("heart", CLEVELAND)
    assert len(rows) == 303  # every row, also those a service must refuse
    assert all(set(row) <= set(spec.feature_names) for row in rows)
    assert isinstance(rows[0]["age"], int) and isinstance(rows[0]["chol"], float)
    assert sum("ca" not in row for row in rows) == 4  # '?' in the file: missing, left out
    assert rows[0]["cp"] in spec.features[2].choices


def test_replay_defaults_to_the_specs_own_source() -> None:
    rows = records_from_csv("iris")
    assert len(rows) == 150 and set(rows[0]) == set(load_dataset_spec("iris").feature_names)


def test_results_of_turns_merge_into_one() -> None:
    first = LoadResult(seconds=10, statuses=Counter({200: 900, 503: 10}),
                       latencies_ms=[5.0] * 910, by_status_ms={200: [5.0] * 900},
                       rows_per_request=1)
    second = LoadResult(seconds=10, statuses=Counter({200: 1100}), errors=Counter(
        {"ClientOSError": 2}), latencies_ms=[50.0] * 1100, by_status_ms={200: [50.0] * 1100})
    merged = LoadResult.merged([first, second])
    assert merged.throughput == 100.0 and merged.requests == 2012 and merged.failures == 2
    assert len(merged.by_status_ms[200]) == 2000 and merged.percentile(0.99) == 50.0
    assert first.throughput == 90.0  # the parts are left as they were
