"""POST /predict and POST /v2/models/{served model}/infer, answered without the framework's
per-request layers.

The routes (BentoML's `/predict`, FastAPI's V2 route in service.py) document the endpoints
and answer everything else on their paths. On its way to the handler, a request through them
went through BentoML's endpoint machinery (its IO descriptor, `inspect.signature` per call,
the service context, the answer model encoded by BentoML) or, for V2, a second Starlette
stack, dependency solving and `Request.json()`: a third of a V2 request's CPU, a quarter of
a `/predict` one's. This middleware (after load shedding, the request guard and request
ids; before validation metrics, which watch only what it hands on) reads the body and
decodes and validates it straight from JSON (the route's own `Record` model; for V2 a
msgspec twin of `InferRequest` that accepts nothing the route refuses), then calls the
service's handler for it. A body that does not validate goes on to the route, replayed, so
every error answer is the route's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from serving.asgi_body import read_body, replay

Handler = Callable[[Any], Awaitable[Any]]  # a validated request in, a Response out


@dataclass(frozen=True)
class FastRoute:
    decode: Callable[[bytes], Any]  # raises ValueError (pydantic's and msgspec's errors are)
    handler: Callable[[], Handler]  # the service's handler, looked up per request


class FastPathMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], *, routes: dict[str, FastRoute],
                 finish: Callable[[Any], Any] = lambda response: response,
                 answered: Callable[[str, Any], None] | None = None) -> None:
        self.app = app
        self.routes = routes
        self.finish = finish  # what the route adds to an answer (headers, CORS)
        self.answered = answered  # sees each answer (path, response), e.g. to count 400s

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        try:
            request = route.decode(body)
        except ValueError:
            await self.app(scope, replay(body, receive), send)  # the route's own error answer
            return
        response = await route.handler()(request)
        if self.answered is not None:
            self.answered(scope["path"], response)
        await self.finish(response)(scope, receive, send)
