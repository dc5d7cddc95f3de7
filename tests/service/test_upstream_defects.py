"""Detectors for the BentoML defects the service works around (serving/upstream_fixes.py).

Each test passes while the defect is present upstream and fails, saying which workaround
can go, once an upgrade fixes it. The workarounds themselves are proven under load by
test_concurrent_burst_is_answered_completely_in_batches.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import socket

# Private modules on purpose: these tests watch upstream internals.
import _bentoml_sdk._internals as class_views
import aiohttp
import numpy as np
import pandas as pd
from _bentoml_impl.client.proxy2 import SessionManager
from aiohttp import web
from bentoml._internal.runner.container import AutoContainer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _concurrent_failures(max_requests: int, calls: int = 200) -> int:
    """Failed calls when `calls` concurrent requests share one recycling SessionManager."""

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.02)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    manager = SessionManager(f"http://127.0.0.1:{port}", timeout=10, headers={},
                             max_requests=max_requests)

    async def call() -> bool:
        try:
            session = await manager.get_session()
            async with session.get("/") as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, RuntimeError, asyncio.CancelledError):
            return False

    try:
        results = await asyncio.gather(*(call() for _ in range(calls)))
    finally:
        await manager.close()
        await runner.cleanup()
    return results.count(False)


def test_session_recycling_still_breaks_in_flight_requests() -> None:
    failures = asyncio.run(_concurrent_failures(max_requests=10))
    assert failures > 0, (
        "BentoML no longer fails in-flight requests when its dependency client recycles its "
        "session: NEVER_RECYCLE (serving/upstream_fixes.py, used in service.py) can go"
    )


def test_never_recycling_avoids_it() -> None:
    assert asyncio.run(_concurrent_failures(max_requests=2**31 - 1)) == 0


def test_dataframe_batch_size_is_still_a_tuple() -> None:
    size = AutoContainer.get_batch_size(pd.DataFrame({"a": [1, 2, 3]}), batch_dim=0)
    assert isinstance(size, tuple), (
        "BentoML now reports DataFrame batch sizes as an int: ModelRunner.score could take "
        "a DataFrame instead of a list of records"
    )
    # The types the service batches over report a plain length.
    assert AutoContainer.get_batch_size([{"a": 1}] * 3, batch_dim=0) == 3
    assert AutoContainer.get_batch_size(np.zeros((3, 2)), batch_dim=0) == 3


def _armed_timers_after_one_request(call) -> int:
    """Timers still armed on the loop after a request through BentoML's TimeoutMiddleware."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> int:
        middleware = TimeoutMiddleware(app, timeout=30)

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def send(message: dict) -> None:
            pass
        await call(middleware, {"type": "http", "path": "/"}, receive, send)
        loop = asyncio.get_running_loop()
        return sum(1 for t in loop._scheduled if not t.cancelled())  # private: the loop's timers
    return asyncio.run(main())


def test_bentoml_request_timers_outlive_the_request() -> None:
    """Fails once BentoML cancels its timeout timer when the answer starts: then
    serving/upstream_fixes.py (and its install() in service.py) can go."""
    from serving.upstream_fixes import UPSTREAM_TIMEOUT_CALL, _timeout_call

    assert _armed_timers_after_one_request(UPSTREAM_TIMEOUT_CALL) == 1, \
        "BentoML now releases its request timer: remove serving/upstream_fixes.py"
    assert _armed_timers_after_one_request(_timeout_call) == 0


def test_upstream_gives_class_views_self_from_a_plain_function() -> None:
    """Defect: BentoML's FastAPI class views (the V2 routes, /model_info, the store API) get
    `self` through Depends(get_current_service), a plain function that FastAPI runs in its
    thread pool on every request. Fails once upstream makes it a coroutine: then
    serving/upstream_fixes._class_views_with_async_self can go."""
    sdk_service = importlib.import_module("_bentoml_sdk.service")
    assert not inspect.iscoroutinefunction(sdk_service.get_current_service)


def test_class_views_get_self_on_the_event_loop() -> None:
    from fastapi import FastAPI

    from serving import upstream_fixes

    upstream_fixes.install()
    app = FastAPI()

    class View:
        @app.get("/x")
        def x(self) -> int:
            return 1

    class_views.make_fastapi_class_views(View, app)
    provider = inspect.signature(View.x).parameters["self"].default.dependency
    assert inspect.iscoroutinefunction(provider)  # FastAPI awaits it: no thread pool
    # and the upstream lookup is back in place for everything else
    assert not inspect.iscoroutinefunction(
        importlib.import_module("_bentoml_sdk.service").get_current_service)
