"""Request guard for the prediction and drift endpoints, before any body is parsed:
optional API-key (bearer token) authentication, JSON only (415), and a body size limit
(413). Health, readiness and metrics stay open for probes and scrapers.

On the Open Inference Protocol (V2) routes a body without a Content-Type is JSON (as
MLServer and older FastAPI take it), and the app is told so: the official Triton client
(`tritonclient.http`) sends no Content-Type.
Its binary tensor extension (header Inference-Header-Content-Length) is refused with 415
and what to send instead.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable

from serving.asgi_body import BodyTooLarge, read_body, replay

# "/predict" also covers the prediction history, /predictions.
PROTECTED_PREFIXES = ("/predict", "/v2/models/", "/drift", "/model_info", "/feedback",
                      "/performance")
OPEN_SUFFIXES = ("/ready",)  # /v2/models/{name}/ready is a probe
V2_PREFIX = "/v2/"  # a body without a Content-Type is JSON here
BINARY_TENSORS_HEADER = b"inference-header-content-length"  # Triton's binary extension
BINARY_TENSORS_ERROR = ("binary tensor data (Triton's binary extension, header "
                        "Inference-Header-Content-Length) is not supported: send JSON tensors "
                        "(tritonclient: binary_data=False on every input and requested output)")
_CONTROL = re.compile("[\x00-\x1f]")
JSON_ONLY_ERROR = "send JSON with 'Content-Type: application/json'"


class RequestGuardMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], *, api_key: str | None,
                 max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    @staticmethod
    def protected(path: str) -> bool:
        return path.startswith(PROTECTED_PREFIXES) and not path.endswith(OPEN_SUFFIXES)

    @staticmethod
    def unsupported_media(path: str, headers: dict[bytes, bytes]) -> str | None:
        """Why a POST body is refused with 415, or None if it is JSON.

        `headers` are lower-cased names. No Content-Type (or an empty one) is JSON on the
        V2 routes only; an explicit type other than application/json is refused everywhere.
        """
        v2 = path.startswith(V2_PREFIX)
        if v2 and BINARY_TENSORS_HEADER in headers:
            return BINARY_TENSORS_ERROR
        content_type = _media_type(headers)
        if content_type == b"application/json" or (v2 and not content_type):
            return None
        return JSON_ONLY_ERROR

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and _CONTROL.search(scope["path"]):
            # Starlette's mount pattern does not match a newline: a plain-text 404 otherwise.
            await _answer(send, 404, "no such path (control characters in the path)")
            return
        if (scope["type"] != "http" or not self.protected(scope["path"])
                or scope["method"] == "OPTIONS"):  # CORS preflights carry no credentials
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # ASGI: names are lower-case bytes
        if self.api_key is not None:
            given = headers.get(b"authorization", b"")
            token = given[7:].strip() if given[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.api_key):
                await _answer(send, 401, "missing or wrong API key: send "
                              "'Authorization: Bearer <key>'",
                              {"www-authenticate": 'Bearer realm="tabular-serving"'})
                return
        declared = headers.get(b"content-length")
        has_body = (declared not in (None, b"0")) or b"chunked" in headers.get(
            b"transfer-encoding", b"")
        if scope["method"] != "POST" or not has_body:  # e.g. POST /drift/check
            await self.app(scope, receive, send)
            return
        refusal = self.unsupported_media(scope["path"], headers)
        if refusal is not None:
            await _answer(send, 415, refusal)
            return
        if not _media_type(headers):
            # A V2 body without a type: tell the app it is JSON, or FastAPI (whose
            # strict_content_type is on by default in the locked 0.165) leaves the body an
            # unparsed string and answers 422.
            scope = {**scope, "headers": [
                *((k, v) for k, v in scope["headers"] if k.lower() != b"content-type"),
                (b"content-type", b"application/json")]}
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body_bytes:
                await _answer(send, 413, f"body over {self.max_body_bytes} bytes; "
                              "split the batch")
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit here, then replay the body.
        try:
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            await _answer(send, 413, f"body over {self.max_body_bytes} bytes; "
                          "split the batch")
            return
        if body is None:
            return  # the client went away
        await self.app(scope, replay(body, receive), send)


def _media_type(headers: dict[bytes, bytes]) -> bytes:
    """The Content-Type without parameters, lower-cased; b"" when there is none."""
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower()


async def _answer(send: Callable, status: int, error: str,
                  extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
