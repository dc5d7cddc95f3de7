"""A model service that is down or shedding load is the server's state, not the client's
mistake: the answer is 503 with Retry-After (safe to retry: scoring has no side effects),
never a 500 and never a hang.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import aiohttp
from bentoml.exceptions import ServiceUnavailable
from fastapi.responses import JSONResponse, Response

from serving.metrics import SHED_REQUESTS
from serving.overload import ADMISSION, OVERLOADED_BODY, RETRY_AFTER_S, Overloaded

# aiohttp's errors: the model service's process died mid-call or is restarting;
# ServiceUnavailable: its dispatcher shed the call (BentoML maps its 503 to this).
UNAVAILABLE = (aiohttp.ClientConnectionError, ServiceUnavailable)
logger = logging.getLogger("tabular.service")

P = ParamSpec("P")
R = TypeVar("R")


class ModelUnavailable(Exception):
    """The model could not be called; the request was not scored."""


def unavailable_answer(exc: BaseException) -> JSONResponse:
    logger.warning("model service unavailable (%s: %s); answered 503",
                   type(exc).__name__, exc)
    return JSONResponse(
        {"error": "the model is restarting or overloaded; retry after "
                  f"{RETRY_AFTER_S} s (scoring is idempotent)"},
        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def answers_503_when_unavailable(
    func: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | JSONResponse]]:
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            return await func(*args, **kwargs)
        except ModelUnavailable as exc:
            return unavailable_answer(exc.__cause__ or exc)
        except Overloaded:
            admission = ADMISSION.get()
            SHED_REQUESTS.labels(endpoint=admission.path if admission else "", reason="wait").inc()
            return Response(OVERLOADED_BODY, status_code=503,
                            media_type="application/json",
                            headers={"Retry-After": str(RETRY_AFTER_S)})
    return wrapper
