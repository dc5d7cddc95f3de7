"""The fast path (serving/fast_path.py): valid bodies go to the service's handler for their
path, everything else to the route with the body intact."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from serving.fast_path import FastPathMiddleware, FastRoute
from serving.v2 import decode_infer_request

PATH = "/v2/models/m/infer"


class Point(BaseModel):  # as the generated record models: strict, no extra fields
    model_config = ConfigDict(extra="forbid", strict=True)
    x: float
VALID = json.dumps({"id": "7", "inputs": [
    {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}).encode()


class Recorder:
    def __init__(self) -> None:
        self.app_bodies: list[bytes] = []
        self.handled: list[Any] = []

    async def app(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.app_bodies.append(body)
        await Response(b"route", status_code=422)(scope, receive, send)

    async def handler(self, request: Any) -> Response:
        self.handled.append(request)
        return Response(b"fast", media_type="application/json")


def call(path: str, chunks: list[bytes], method: str = "POST") -> tuple[Recorder, list[dict]]:
    recorder, sent = Recorder(), []
    middleware = FastPathMiddleware(recorder.app, routes={
        PATH: FastRoute(decode_infer_request, lambda: recorder.handler),
        "/predict": FastRoute(Point.model_validate_json, lambda: recorder.handler)})
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    asyncio.run(middleware(scope, receive, send))
    return recorder, sent


def body_of(sent: list[dict]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_valid_body_is_answered_by_the_handler_in_one_or_many_chunks() -> None:
    for chunks in ([VALID], [VALID[:10], VALID[10:40], VALID[40:]]):
        recorder, sent = call(PATH, chunks)
        assert body_of(sent) == b"fast" and not recorder.app_bodies
        assert recorder.handled[0].id == "7" and recorder.handled[0].inputs[0].data == [1.5]


def test_an_invalid_body_reaches_the_route_unchanged() -> None:
    for body in (b"{not json", json.dumps({"inputs": []}).encode(),
                 json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP99",
                                         "data": [1]}]}).encode()):
        recorder, sent = call(PATH, [body[:5], body[5:]])
        assert recorder.app_bodies == [body] and not recorder.handled
        assert body_of(sent) == b"route" and sent[0]["status"] == 422


def test_each_path_validates_against_its_own_model() -> None:
    point = json.dumps({"x": 2}).encode()
    recorder, sent = call("/predict", [point])
    assert body_of(sent) == b"fast" and recorder.handled == [Point(x=2.0)]
    for body in (VALID, json.dumps({"x": 2, "y": 1}).encode(), json.dumps({"x": "2"}).encode()):
        recorder, sent = call("/predict", [body])
        assert recorder.app_bodies == [body] and not recorder.handled and sent[0]["status"] == 422
    recorder, _ = call(PATH, [point])
    assert recorder.app_bodies == [point] and not recorder.handled


def test_other_paths_and_methods_are_left_to_the_app() -> None:
    for path, method in (("/v2/models/other/infer", "POST"), (PATH, "GET"),
                         ("/predict", "GET"), ("/predict_batch", "POST")):
        recorder, _ = call(path, [VALID], method)
        assert recorder.app_bodies == [VALID] and not recorder.handled
