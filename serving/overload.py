"""Load shedding: refuse at once what the worker cannot answer in time, instead of queueing it.

Two limits, both answered 503 with Retry-After and counted in `tabular_shed_requests_total`:
- `max_in_flight`: scoring requests a worker holds at once (being parsed, validated, waiting
  for or in a model call). One more is refused on arrival, before its body is read, so an
  overloaded worker spends almost nothing on it. By Little's law this also bounds how long
  the accepted ones wait: in-flight / throughput.
- `max_wait_ms`: a request that is still waiting for its model call this long after it
  arrived is refused before any model work (the batcher checks the deadline set here), so
  no accepted request waits until the traffic timeout.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from serving.metrics import SHED_REQUESTS

RETRY_AFTER_S = 1  # a worker's queue turns over in well under a second
LOG_EVERY_S = 10.0  # refusals bypass the access log: one summary line at most this often
logger = logging.getLogger("tabular.overload")



@dataclass(frozen=True)
class Admission:
    """The current request's route and the time.monotonic() by which its model call must
    start; set on arrival, read by the batcher."""

    path: str
    deadline: float

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


ADMISSION: contextvars.ContextVar[Admission | None] = contextvars.ContextVar(
    "tabular_admission", default=None)


class Overloaded(Exception):
    """The request waited `max_wait_ms` without reaching the model; refused unscored."""


class LoadShedMiddleware:
    """ASGI middleware for the scoring routes, run before any other middleware (see
    serving/upstream_fixes.py): a refusal costs only the HTTP parsing."""

    FRONT = True

    def __init__(self, app: Callable[..., Awaitable[None]], *, paths: set[str],
                 max_in_flight: int, max_wait_ms: float) -> None:
        self.app = app
        self.paths = paths
        self.max_in_flight = max_in_flight
        self.max_wait_s = max_wait_ms / 1000
        self.in_flight = 0
        self._refused = 0
        self._logged_at = 0.0
        for path in paths:  # exported as 0 from the start, so rate() and alerts see them
            for reason in ("in_flight", "wait"):
                SHED_REQUESTS.labels(endpoint=path, reason=reason)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in self.paths):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            SHED_REQUESTS.labels(endpoint=scope["path"], reason="in_flight").inc()
            self._log_refusal()
            await _refuse(send)
            return
        self.in_flight += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.in_flight -= 1

        async def answered(message: dict) -> None:
            await send(message)
            # Held until the answer's last byte is sent, not until the app returns: the
            # middleware stack inside (metrics, tracing, access log) finishes after that, and
            # a kept-alive client's next request would count twice.
            if message["type"] == "http.response.body" and not message.get("more_body"):
                release()

        token = ADMISSION.set(Admission(scope["path"], time.monotonic() + self.max_wait_s))
        try:
            await self.app(scope, receive, answered)
        finally:
            ADMISSION.reset(token)
            release()


    def _log_refusal(self) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            logger.warning("overloaded: refused %d request(s) with 503 since the last report "
                           "(max_in_flight=%d per worker); add replicas or raise the limit",
                           self._refused, self.max_in_flight)
            self._refused, self._logged_at = 0, now


OVERLOADED_BODY = json.dumps({
    "error": "the server is at capacity and refused this request unscored; retry after "
             f"{RETRY_AFTER_S} s (scoring is idempotent)"}).encode()


async def _refuse(send: Callable) -> None:
    body = OVERLOADED_BODY
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode())]})
    await send({"type": "http.response.body", "body": body})
