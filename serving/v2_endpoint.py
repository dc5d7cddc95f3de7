"""POST /v2/models/{served model}/infer, answered without FastAPI's layers.

The FastAPI route (service.py) documents the endpoint and answers everything else on the
V2 paths, but on its way to the handler a request went through a second Starlette stack
(the mounted app's error, body-limit and exit-stack middleware and routers), dependency
solving, `Request.json()` and validation of the dict: about a third of a V2 request's CPU,
which held V2 at 60-80% of /predict's throughput. This middleware, the innermost of the
service's own (after load shedding, the request guard, validation metrics and request
ids), reads the body and validates it straight from JSON against the same `InferRequest`
model, then calls the same handler as the route (`TabularService.v2_answer`). A body that
does not validate goes on to the route, replayed, so every error answer is the route's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from serving.asgi_body import read_body, replay
from serving.v2 import InferRequest

Handler = Callable[[InferRequest], Awaitable[Any]]  # an InferRequest in, a Response out


class V2InferMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], *, path: str,
                 handler: Callable[[], Handler]) -> None:
        self.app = app
        self.path = path
        self.handler = handler  # the service's handler, looked up per request

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        try:
            request = InferRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replay(body, receive), send)  # the route's 422
            return
        response = await self.handler()(request)
        await response(scope, receive, send)

