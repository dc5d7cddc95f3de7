"""The request guard's content-type rules, on the ASGI middleware alone (no server): a body
without a Content-Type is JSON on the V2 routes only (and the app behind is told so), and
Triton's binary tensors are refused with what to send instead."""

from __future__ import annotations

import asyncio
import json

import pytest

from serving.guard import RequestGuardMiddleware
from serving.openapi import patch

BODY = b'{"inputs": []}'
INFER = "/v2/models/iris-classifier/infer"


def call(path: str, headers: dict[str, str], body: bytes = BODY) -> tuple[int, dict, dict]:
    """POST `body` to `path` through the guard in front of an app that records what it got:
    (status, the guard's answer, {"body": ..., "content-type": ...} as the app saw them)."""
    reached: list[dict] = []

    async def app(scope: dict, receive, send) -> None:
        message = await receive()
        types = [v for k, v in scope["headers"] if k == b"content-type"]
        reached.append({"body": message["body"], "content-type": types})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                         for k, v in headers.items()]}
    guard = RequestGuardMiddleware(app, api_key=None, max_body_bytes=1_000)
    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    answer = json.loads(sent[1]["body"]) if status != 200 else {}
    assert (status == 200) == bool(reached), "the app runs exactly when the guard lets it"
    return status, answer, reached[0] if reached else {}


def length(body: bytes = BODY) -> dict[str, str]:
    return {"Content-Length": str(len(body))}


@pytest.mark.parametrize("content_type", [None, "", "application/json",
                                          "application/json; charset=utf-8"])
def test_v2_bodies_without_a_content_type_are_json(content_type: str | None) -> None:
    headers = length() | ({} if content_type is None else {"Content-Type": content_type})
    status, _, seen = call(INFER, headers)
    # FastAPI parses a body as JSON only when told (strict_content_type): the guard says so.
    assert status == 200 and seen["body"] == BODY
    assert seen["content-type"] == [(content_type or "application/json").encode()]


def test_chunked_v2_bodies_without_a_content_type_are_json() -> None:
    status, _, seen = call(INFER, {"Transfer-Encoding": "chunked"})
    assert (status, seen) == (200, {"body": BODY, "content-type": [b"application/json"]})


@pytest.mark.parametrize("path", ["/predict", "/predict_batch"])
def test_other_routes_still_need_the_content_type(path: str) -> None:
    status, answer, _ = call(path, length())
    assert status == 415 and "application/json" in answer["error"]


@pytest.mark.parametrize("path", [INFER, "/predict"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/octet-stream"])
def test_a_wrong_explicit_content_type_is_415_everywhere(path: str, content_type: str) -> None:
    status, answer, _ = call(path, length() | {"Content-Type": content_type})
    assert status == 415 and "application/json" in answer["error"]


@pytest.mark.parametrize("content_type", [None, "application/json", "application/octet-stream"])
def test_binary_tensors_are_refused_with_what_to_send(content_type: str | None) -> None:
    body = BODY + b"\x00\x00\x80?"  # a JSON header, then the tensor bytes
    headers = length(body) | {"Inference-Header-Content-Length": str(len(BODY))}
    headers |= {} if content_type is None else {"Content-Type": content_type}
    status, answer, _ = call(INFER, headers, body)
    assert status == 415
    assert "binary_data=False" in answer["error"] and "JSON tensors" in answer["error"]


def test_the_openapi_document_says_so_for_v2_only() -> None:
    doc = {"paths": {INFER.replace("iris-classifier", "{name}"): {"post": {"responses": {}}},
                     "/predict": {"post": {"responses": {}}}}}
    paths = patch(doc, api_key=False, max_body_bytes=1_000)["paths"]
    v2 = paths["/v2/models/{name}/infer"]["post"]["responses"]["415"]["description"]
    assert "binary" in v2 and "without a Content-Type" in v2
    assert "binary" not in paths["/predict"]["post"]["responses"]["415"]["description"]
