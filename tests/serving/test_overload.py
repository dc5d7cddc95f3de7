"""The load-shedding middleware on its own: refuses over max_in_flight at once, counts it."""

from __future__ import annotations

import asyncio
import json
import time

from prometheus_client import REGISTRY

from serving.overload import ADMISSION, LoadShedMiddleware


def shed_count(path: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("tabular_shed_requests_total",
                                      {"endpoint": path, "reason": reason})
    return value or 0.0


async def call(app, path: str = "/predict", method: str = "POST") -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)
    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_over_max_in_flight_is_refused_at_once_with_retry_after() -> None:
    gate = asyncio.Event()
    seen: list[object] = []

    async def slow_app(scope, receive, send) -> None:
        seen.append(ADMISSION.get())
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    shed = LoadShedMiddleware(slow_app, paths={"/predict"}, max_in_flight=2, max_wait_ms=250)
    before = shed_count("/predict", "in_flight")

    async def main() -> None:
        held = [asyncio.create_task(call(shed)) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert shed.in_flight == 2
        start = time.perf_counter()
        status, headers, body = await call(shed)
        assert time.perf_counter() - start < 0.05  # refused at once, not queued
        assert status == 503 and headers["retry-after"] == "1"
        assert "retry" in json.loads(body)["error"]
        # Other paths and methods are never shed.
        gate.set()
        assert [s for s, _, _ in await asyncio.gather(*held)] == [200, 200]
        assert shed.in_flight == 0
        assert (await call(shed))[0] == 200  # capacity is back

    asyncio.run(main())
    assert shed_count("/predict", "in_flight") == before + 1
    # The admitted requests carried their route and a deadline max_wait_ms ahead.
    assert all(a is not None and a.path == "/predict" for a in seen)


def test_other_routes_pass_whatever_the_load() -> None:
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shed = LoadShedMiddleware(app, paths={"/predict"}, max_in_flight=1, max_wait_ms=250)
    shed.in_flight = 1  # as if full
    assert asyncio.run(call(shed, "/model_info", "GET"))[0] == 204
    assert asyncio.run(call(shed, "/metrics", "GET"))[0] == 204
    assert asyncio.run(call(shed, "/predict"))[0] == 503
