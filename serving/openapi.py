"""Make the OpenAPI document (/docs.json) describe every answer the server gives.

BentoML 1.4 generates it with gaps that clients and fuzzers trip on:
- its 400 schema declares `detail` a string, but the body carries a list of pydantic errors;
- it drops the `null` branch of optional fields (pydantic's `anyOf [..., null]`), so fields
  that may be null or omitted are documented as never null;
- the answers of our own guard (401, 413, 415) and of a restarting model service (503)
  are not declared at all;
- its `info` is BentoML's boilerplate (service docstring, version "None", "Contact BentoML
  Team"): it is replaced by the served model's (`openapi_info`).
The document is patched as it is served, so it cannot drift from the code.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from serving.guard import V2_PREFIX, RequestGuardMiddleware
from serving.landing import TASKS

if TYPE_CHECKING:
    from serving.model_store import ServedModel

DOCS_PATH = "/docs.json"
SCORING_SUFFIXES = ("/predict", "/predict_batch", "/infer")

VALIDATION_ERRORS = {
    "type": "array",
    "title": "Validation errors",
    "items": {
        "type": "object",
        "required": ["type", "loc", "msg"],
        "properties": {
            "type": {"type": "string", "description": "the rule broken (pydantic error type)"},
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                          {"type": "integer"}]},
                    "description": "where: field name, or batch index then field name"},
            "msg": {"type": "string"},
        },
    },
}
ERROR_SCHEMA = {"type": "object", "required": ["error"],
                "properties": {"error": {"type": "string"}}}

# Documented answers of the FastAPI routes in service.py (their bodies are JSON errors).
ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "detail": {}}}}}}
NOT_FOUND = {404: {"description": "unknown model or nothing yet", **ERROR}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/GuardError"}}}}
    if headers:
        response["headers"] = headers
    return response


def _nullable_defaults(node: Any) -> None:
    """Mark every property whose default is null as nullable (OpenAPI 3.0 style)."""
    if isinstance(node, list):
        for item in node:
            _nullable_defaults(item)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    for prop in properties.values() if isinstance(properties, dict) else ():
        if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
            prop["nullable"] = True
            if "enum" in prop and None not in prop["enum"]:
                prop["enum"] = [*prop["enum"], None]
    for value in node.values():
        _nullable_defaults(value)


def openapi_info(served: ServedModel) -> dict[str, Any]:
    """The OpenAPI document's `info`: this model, not BentoML's boilerplate."""
    spec = served.spec
    classes = f" into {', '.join(served.classes)}" if served.classes else ""
    return {
        "title": served.name,
        "version": served.version or "unknown",
        "description": (
            f"{TASKS.get(spec.task, spec.task).capitalize()}{classes}, trained on the data set "
            f"'{spec.name}': {spec.description.strip()} Target: {spec.target.description}. "
            "The page at / describes the model, its hold-out metrics and its features."
        ),
    }


def patch(doc: dict[str, Any], *, api_key: bool, max_body_bytes: int,
          info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document with the missing answers declared (in place; also returned)."""
    if info is not None:
        doc["info"] = dict(info)  # no `contact`: BentoML's is its team's, not this service's
    _nullable_defaults(doc)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if "InvalidArgument" in schemas:
        schemas["InvalidArgument"]["properties"]["detail"] = VALIDATION_ERRORS
    schemas["GuardError"] = ERROR_SCHEMA
    if api_key:
        components["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
    for path, item in doc.get("paths", {}).items():
        if not RequestGuardMiddleware.protected(path):
            continue
        for method, operation in item.items():
            if method not in ("get", "post"):
                continue
            responses = operation.setdefault("responses", {})
            if api_key:
                operation["security"] = [{"apiKey": []}]
                responses["401"] = _error("missing or wrong API key", {
                    "WWW-Authenticate": {"schema": {"type": "string"}}})
            if method == "post":
                if path.endswith(SCORING_SUFFIXES) and "requestBody" in operation:
                    operation["requestBody"]["required"] = True
                responses["413"] = _error(f"body over {max_body_bytes} bytes")
                responses["415"] = _error(
                    "body not sent as application/json (on V2 routes a body without a "
                    "Content-Type is JSON), or V2 binary tensor data "
                    "(Inference-Header-Content-Length): send JSON tensors"
                    if path.startswith(V2_PREFIX) else "body not sent as application/json")
            if path.endswith(SCORING_SUFFIXES):
                responses["503"] = _error(
                    "model restarting or overloaded: retry after Retry-After seconds",
                    {"Retry-After": {"schema": {"type": "integer"}}})
    return doc


class OpenAPIPatchMiddleware:
    """Rewrites the body of GET /docs.json with `patch`; everything else passes through."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, api_key: bool,
                 max_body_bytes: int, info: dict[str, Any] | None = None) -> None:
        self.app = app
        self.options = {"api_key": api_key, "max_body_bytes": max_body_bytes, "info": info}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] != DOCS_PATH:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def buffer(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await _send_patched(send, start, b"".join(chunks), self.options)

        await self.app(scope, receive, buffer)


async def _send_patched(send: Callable, start: dict[str, Any], body: bytes,
                        options: dict[str, Any]) -> None:
    if start.get("status") == 200:
        body = json.dumps(patch(json.loads(body), **options)).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
