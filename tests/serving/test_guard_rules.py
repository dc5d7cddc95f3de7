"""The request guard's rules, on the ASGI middleware alone (no server; tests/service/
test_guard.py runs them through `bentoml serve`): a body without a Content-Type is JSON on the
V2 routes only (and the app behind is told so), Triton's binary tensors are refused with what
to send instead; the API key, the body size limit with and without Content-Length, what is
left open, and the exact answers the guard sends."""

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


# A general exchange: any scope, the client's messages, and what the guard and the app did.
KEY = "s3cret-key"
LIMIT = 100
JSON_TYPE = {"Content-Type": "application/json"}


class Exchange:
    """One request through a guard (api key KEY unless told otherwise, LIMIT bytes) in front
    of an app that reads the whole body (up to two receives past it), echoes it and records
    the scope it got."""

    def __init__(self, method: str, path: str, headers: dict[str, str],
                 messages: list[dict] | None = None, *, api_key: str | None = KEY,
                 scope_type: str = "http") -> None:
        self.app_scope: dict | None = None
        self.app_received: list[dict] = []
        self.sent: list[dict] = []
        pending = list(messages if messages is not None else
                       [{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            self.sent.append(message)

        async def app(scope: dict, app_receive, app_send) -> None:
            self.app_scope = scope
            if scope["type"] == "http":
                while True:
                    message = await app_receive()
                    self.app_received.append(message)
                    if not message.get("more_body"):
                        break
                self.app_received.append(await app_receive())  # past the body: the client's
                body = b"".join(m.get("body", b"") for m in self.app_received)
            else:
                body = b""
            await app_send({"type": "http.response.start", "status": 200, "headers": []})
            await app_send({"type": "http.response.body", "body": body})

        scope = {"type": scope_type}
        if scope_type != "lifespan":
            scope |= {"method": method, "path": path,
                      "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                  for k, v in headers.items()]}
        guard = RequestGuardMiddleware(app, api_key=api_key, max_body_bytes=LIMIT)
        asyncio.run(guard(scope, receive, send))

    @property
    def reached_app(self) -> bool:
        return self.app_scope is not None

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def body(self) -> bytes:
        return self.sent[1]["body"]


def refused(x: Exchange, status: int, error: str, extra: list | None = None) -> None:
    """The guard answered `status` with exactly {"error": error} and the app never ran."""
    assert not x.reached_app
    body = json.dumps({"error": error}).encode()
    assert x.sent == [
        {"type": "http.response.start", "status": status,
         "headers": [(b"content-type", b"application/json"),
                     (b"content-length", str(len(body)).encode()), *(extra or [])]},
        {"type": "http.response.body", "body": body},
    ]


def passed(x: Exchange, body: bytes = b"") -> None:
    """The app ran with the client's scope, receive and send: it read `body` and answered."""
    assert x.reached_app and x.status == 200 and x.body == body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


WRONG_KEY = "missing or wrong API key: send 'Authorization: Bearer <key>'"
WWW_AUTH = [(b"www-authenticate", b'Bearer realm="tabular-serving"')]


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), bearer(KEY + "x"),
                                     {"Authorization": KEY},
                                     {"Authorization": f"Token: {KEY}"},  # not the Bearer scheme
                                     {"Authorization": "Bearer"}])
@pytest.mark.parametrize("path", ["/predict", INFER, "/drift/check", "/model_info"])
def test_a_missing_or_wrong_key_is_401_with_the_scheme_to_use(headers, path: str) -> None:
    refused(Exchange("POST", path, headers | JSON_TYPE), 401, WRONG_KEY, WWW_AUTH)


@pytest.mark.parametrize("authorization", [f"Bearer {KEY}", f"bearer {KEY}",
                                           f"BEARER   {KEY}  "])
def test_the_right_key_passes_in_any_case_of_the_scheme(authorization: str) -> None:
    body = b'{"x": 1}'
    x = Exchange("POST", "/predict", {"Authorization": authorization, **JSON_TYPE,
                                      "Content-Length": str(len(body))},
                 [{"type": "http.request", "body": body}])
    passed(x, body)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/"),
    ("GET", "/v2/models/iris-classifier/ready"),  # a probe, under a protected prefix
    ("OPTIONS", "/predict"),  # a CORS preflight carries no credentials
])
def test_probes_pages_and_preflights_need_no_key(method: str, path: str) -> None:
    passed(Exchange(method, path, {}))


def test_non_http_scopes_pass_untouched() -> None:
    x = Exchange("", "", {}, scope_type="lifespan")
    assert x.app_scope == {"type": "lifespan"} and x.status == 200


def test_without_a_key_configured_no_authorization_is_needed() -> None:
    passed(Exchange("POST", "/predict", {}, api_key=None))
    passed(Exchange("POST", "/predict", bearer("anything"), api_key=None))


def test_control_characters_in_a_path_are_a_json_404() -> None:
    for path in ("/predict\n", "/docs\x00x", "/a\tb"):
        refused(Exchange("GET", path, bearer(KEY)), 404,
                "no such path (control characters in the path)")
    passed(Exchange("GET", "/docs page", {}))  # a space is not a control character


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "0"}])
def test_a_post_without_a_body_needs_no_content_type(headers: dict[str, str]) -> None:
    # e.g. POST /drift/check: nothing to parse, so nothing to refuse.
    passed(Exchange("POST", "/drift/check", bearer(KEY) | headers))


def test_a_get_with_a_body_is_not_checked_for_json() -> None:
    x = Exchange("GET", "/model_info", bearer(KEY) | {"Content-Length": "4"},
                 [{"type": "http.request", "body": b"abcd"}])
    passed(x, b"abcd")


def _declared(body: bytes) -> Exchange:
    return Exchange("POST", "/predict", bearer(KEY) | JSON_TYPE
                    | {"Content-Length": str(len(body))},
                    [{"type": "http.request", "body": body}])


def test_a_declared_length_over_the_limit_is_413_unread() -> None:
    passed(_declared(b"x" * LIMIT), b"x" * LIMIT)  # the limit itself is allowed
    refused(_declared(b"x" * (LIMIT + 1)), 413, f"body over {LIMIT} bytes; split the batch")


def _chunked(*chunks: bytes, last: dict | None = None) -> Exchange:
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages.append(last or {"type": "http.request", "more_body": False})  # body: optional
    return Exchange("POST", "/predict", bearer(KEY) | JSON_TYPE
                    | {"Transfer-Encoding": "chunked"}, messages)


def test_a_chunked_body_is_replayed_whole_once() -> None:
    x = _chunked(b"x" * 40, b"y" * 40, last={"type": "http.request", "body": b"z" * 20})
    passed(x, b"x" * 40 + b"y" * 40 + b"z" * 20)  # exactly the limit
    # One message with the whole body, then what the client sends next (not the body again).
    assert x.app_received == [
        {"type": "http.request", "body": b"x" * 40 + b"y" * 40 + b"z" * 20, "more_body": False},
        {"type": "http.disconnect"}]
    x = _chunked(b"ab", b"cd")  # the last message has no body key (ASGI: empty)
    passed(x, b"abcd")


def test_a_chunked_body_over_the_limit_is_413_counting_every_chunk() -> None:
    refused(_chunked(b"x" * 60, b"y" * 41), 413, f"body over {LIMIT} bytes; split the batch")
    refused(_chunked(b"x" * 40, b"y" * 40, b"z" * 21), 413,
            f"body over {LIMIT} bytes; split the batch")


def test_a_client_that_leaves_mid_body_gets_nothing_and_reaches_nothing() -> None:
    x = _chunked(b"x" * 10, last={"type": "http.disconnect"})
    assert not x.reached_app and x.sent == []
