"""Fixes for BentoML 1.4.39 defects that cannot be worked around from configuration.

Each has a detector in tests/service/test_upstream_defects.py that fails once an upgrade
fixes the defect upstream, naming the fix here that can then go.
"""

from __future__ import annotations

import asyncio
import functools

# Private on purpose: these are the patch targets.
import importlib
from typing import Any

import _bentoml_sdk._internals as class_views
from _bentoml_impl.server.app import ServiceAppFactory
from bentoml._internal.server.http import traffic
from starlette.middleware import Middleware
from starlette.responses import JSONResponse


async def _timeout_call(self: Any, scope: dict, receive: Any, send: Any) -> None:
    """BentoML's TimeoutMiddleware.__call__, with its timer cancelled once the answer starts.

    Upstream leaves every request's timer armed for the full traffic timeout (30 s). Each
    timer holds the request's context (OpenTelemetry span, futures, locks): at 250 req/s a
    worker carried about 60,000 such objects through every garbage collection.
    """
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: dict) -> None:
        if not waiter.done():
            waiter.set_result(None)
            timer.cancel()
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            resp = JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"},
                status_code=504)
            await resp(scope, receive, send)
    else:
        await fut
    finally:
        timer.cancel()


# The dependency client (`service` mode) recycles its HTTP session every `max_requests`
# requests (default 100) or `max_age` seconds, closing it while other requests are still in
# flight on it (500s under load; BentoML issues #5540/#5544). The session talks to a local
# socket, so recycling buys nothing: the model service sets this `runner_connection`.
NEVER_RECYCLE = {"max_requests": 2**31 - 1, "max_age": 10.0 * 365 * 24 * 3600}

UPSTREAM_TIMEOUT_CALL = traffic.TimeoutMiddleware.__call__
UPSTREAM_MIDDLEWARES = ServiceAppFactory.middlewares


def _front_middlewares(self: Any) -> list[Middleware]:
    """BentoML's middleware list with the project's `FRONT` middleware moved to the front.

    BentoML runs a service's own ASGI middleware inside its metrics, tracing and access-log
    middleware, which cost about 1 ms of CPU per request here: refusing a request there
    capped refusals at about 1,500/s on 2 cores, so 3-4x overload still collapsed. In
    front, a refusal costs only the HTTP parsing.
    """
    middlewares = list(UPSTREAM_MIDDLEWARES.fget(self))  # type: ignore[attr-defined]
    return sorted(middlewares, key=lambda m: not getattr(m.cls, "FRONT", False))


UPSTREAM_CLASS_VIEWS = class_views.make_fastapi_class_views
# The package, not the `service` decorator that _bentoml_sdk exports under the same name.
sdk_service = importlib.import_module("_bentoml_sdk.service")


def current_service() -> Any:
    """The service instance of this worker (what BentoML gives a mounted route as `self`)."""
    return sdk_service.get_current_service()


def _class_views_with_async_self(cls: type, app: Any) -> None:
    """BentoML's FastAPI class views, with `self` from an async dependency.

    Upstream gives each route of a mounted FastAPI app its `self` through
    `Depends(get_current_service)`, a plain function, which FastAPI runs in its thread pool:
    a thread hand-off on every V2 request (in a profile, most of its worker's thread churn).
    The same lookup as a coroutine runs on the event loop.
    """
    sync = sdk_service.get_current_service

    async def current_service() -> Any:
        return sync()

    sdk_service.get_current_service = current_service  # read by the upstream function
    try:
        UPSTREAM_CLASS_VIEWS(cls, app)
    finally:
        sdk_service.get_current_service = sync


def install() -> None:
    traffic.TimeoutMiddleware.__call__ = _timeout_call  # type: ignore[method-assign]
    ServiceAppFactory.middlewares = property(_front_middlewares)  # type: ignore[method-assign]
    class_views.make_fastapi_class_views = _class_views_with_async_self


@functools.cache
def _route_settings() -> tuple[Any, dict[str, str], bool, Any]:
    """Read once per worker: BentoML's trace context, the id formats, whether trace ids are
    sent, and CORS (a function wrapping an answer in the route's CORS middleware, or None)."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.context import trace_context
    from starlette.middleware.cors import CORSMiddleware

    cors = None
    if BentoMLContainer.http.cors.enabled.get():
        cors = functools.partial(CORSMiddleware, **BentoMLContainer.access_control_options.get())
    return (trace_context, BentoMLContainer.logging_formatting.get(),
            bool(BentoMLContainer.http.response.trace_id.get()), cors)


def as_route_answers(response: Any, service_name: str) -> Any:
    """An answer made outside BentoML's route (serving/fast_path.py) as the route would send
    it: its Server and X-BentoML-Request-ID (X-BentoML-Trace-ID) headers, which
    `ServiceAppFactory._add_response_headers` sets, and CORS, whose middleware BentoML places
    inside the service's own middleware, where the fast path never reaches it."""
    context, formats, trace_ids, cors = _route_settings()
    # Appended raw: the answer has none of them, and Starlette's MutableHeaders scans and
    # rebuilds the list on every assignment.
    headers = response.raw_headers
    headers.append((b"server", f"BentoML Service/{service_name}".encode()))
    if context.request_id is not None:
        headers.append((b"x-bentoml-request-id",
                        format(context.request_id, formats["span_id"]).encode()))
    if trace_ids and context.trace_id is not None:
        headers.append((b"x-bentoml-trace-id",
                        format(context.trace_id, formats["trace_id"]).encode()))
    return cors(response) if cors else response
