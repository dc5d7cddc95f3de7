"""The OpenAPI patch (serving/openapi.py) without a server: on a document shaped like the one
BentoML generates, and on BentoML's own document for the spec's record models; then the
middleware that rewrites GET /docs.json. (The V2 415 wording: tests/serving/test_guard_rules.)"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from contract.spec import load_dataset_spec
from serving.openapi import DOCS_PATH, OpenAPIPatchMiddleware, patch
from serving.schema import batch_model, record_model

MAX_BODY = 4_000_000
SCORING = ["/predict", "/predict_batch", "/v2/models/{name}/infer"]
BODY = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}}


def bentoml_like() -> dict[str, Any]:
    """The parts of BentoML 1.4's document the patch works on, with its gaps."""
    post = {"requestBody": copy.deepcopy(BODY),
            "responses": {"200": {"description": "ok"},
                          "400": {"$ref": "#/components/responses/InvalidArgument"}}}
    get = {"responses": {"200": {"description": "ok"}}}
    return {
        "openapi": "3.0.2",
        "info": {"title": "tabular_service", "version": "None",
                 "contact": {"name": "BentoML Team", "email": "contact@bentoml.com"}},
        "paths": {
            **{path: {"post": copy.deepcopy(post)} for path in SCORING},
            "/drift/check": {"post": copy.deepcopy(get)},  # a POST without a body
            "/model_info": {"get": copy.deepcopy(get)},
            "/drift": {"get": copy.deepcopy(get)},
            "/v2/models/{name}": {"get": copy.deepcopy(get)},
            "/v2/models/{name}/ready": {"get": copy.deepcopy(get)},
            "/readyz": {"get": copy.deepcopy(get)},
            "/metrics": {"get": copy.deepcopy(get)},
            "/v2/health/live": {"get": copy.deepcopy(get)},
        },
        "components": {"schemas": {
            "InvalidArgument": {"type": "object", "properties": {
                "error": {"type": "string"}, "detail": {"type": "string"}}},
            "Record": {"type": "object", "required": ["age"], "properties": {
                "age": {"type": "integer", "minimum": 18},
                "chol": {"type": "number", "default": None},
                "thal": {"enum": [3, 6, 7], "default": None},
                "nested": {"type": "object", "properties": {
                    "deep": {"type": "string", "default": None}}},
            }},
            "Batch": {"type": "object", "properties": {"records": {
                "type": "array", "items": {"properties": {
                    "inline": {"type": "number", "default": None}}}}}},
        }},
    }


def patched(api_key: bool = False, **kwargs: Any) -> dict[str, Any]:
    return patch(bentoml_like(), api_key=api_key, max_body_bytes=MAX_BODY, **kwargs)


def responses(doc: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    return doc["paths"][path][method]["responses"]


def test_the_400_detail_is_a_list_of_located_errors() -> None:
    detail = patched()["components"]["schemas"]["InvalidArgument"]["properties"]["detail"]
    assert detail["type"] == "array"
    assert set(detail["items"]["required"]) == {"type", "loc", "msg"}
    loc = detail["items"]["properties"]["loc"]
    assert loc["type"] == "array"  # a field name, or a batch index and a field name
    assert {t["type"] for t in loc["items"]["anyOf"]} == {"string", "integer"}


def test_fields_with_a_null_default_are_nullable_at_any_depth() -> None:
    schemas = patched()["components"]["schemas"]
    record = schemas["Record"]["properties"]
    assert record["chol"]["nullable"] is True
    assert record["thal"]["nullable"] is True and record["thal"]["enum"] == [3, 6, 7, None]
    assert "nullable" not in record["age"]  # required, never null
    assert record["nested"]["properties"]["deep"]["nullable"] is True
    assert schemas["Batch"]["properties"]["records"]["items"]["properties"]["inline"][
        "nullable"] is True


def test_patching_twice_changes_nothing_more() -> None:
    once = patched(api_key=True)
    assert patch(copy.deepcopy(once), api_key=True, max_body_bytes=MAX_BODY) == once


@pytest.mark.parametrize("path", SCORING)
def test_scoring_bodies_are_required_and_every_refusal_is_declared(path: str) -> None:
    doc = patched()
    operation = doc["paths"][path]["post"]
    assert operation["requestBody"]["required"] is True
    answers = operation["responses"]
    assert {"200", "400", "413", "415", "503"} <= set(answers)
    assert str(MAX_BODY) in answers["413"]["description"]
    assert answers["503"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for status in ("413", "415", "503"):
        schema = answers[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/GuardError"}
    assert doc["components"]["schemas"]["GuardError"]["required"] == ["error"]
    assert "401" not in answers and "security" not in operation  # no key configured


def test_other_posts_get_413_and_415_but_no_503_and_no_required_body() -> None:
    doc = patched()
    answers = responses(doc, "/drift/check")
    assert {"413", "415"} <= set(answers) and "503" not in answers
    assert "requestBody" not in doc["paths"]["/drift/check"]["post"]


@pytest.mark.parametrize("path", ["/model_info", "/drift", "/v2/models/{name}"])
def test_protected_gets_have_no_body_refusals(path: str) -> None:
    assert set(responses(patched(), path, "get")) == {"200"}
    assert set(responses(patched(api_key=True), path, "get")) == {"200", "401"}


@pytest.mark.parametrize("path", ["/readyz", "/metrics", "/v2/health/live",
                                  "/v2/models/{name}/ready"])
def test_probes_and_metrics_are_left_alone(path: str) -> None:
    for api_key in (False, True):
        operation = patched(api_key=api_key)["paths"][path]["get"]
        assert operation == {"responses": {"200": {"description": "ok"}}}


def test_with_an_api_key_every_protected_operation_declares_bearer_and_401() -> None:
    doc = patched(api_key=True)
    assert doc["components"]["securitySchemes"] == {"apiKey": {"type": "http",
                                                               "scheme": "bearer"}}
    for path in [*SCORING, "/drift/check"]:
        operation = doc["paths"][path]["post"]
        assert operation["security"] == [{"apiKey": []}]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "securitySchemes" not in patched()["components"]


def test_info_is_the_served_models_without_bentomls_contact() -> None:
    info = {"title": "heart-disease-classifier", "version": "v3", "description": "heart"}
    doc = patched(info=info)
    assert doc["info"] == info and doc["info"] is not info
    assert patched()["info"]["title"] == "tabular_service"  # no info given: kept


def test_bentomls_own_document_for_the_record_models_is_patched() -> None:
    """BentoML's generator on the spec's real request models: nullable fields, required
    bodies and the error schema come out as the patch promises."""
    import bentoml

    spec = load_dataset_spec("heart")
    record = record_model(spec)
    batch = batch_model(spec, record, 50)

    @bentoml.service
    class Documented:
        @bentoml.api(route="/predict", input_spec=record)
        def predict(self, **values: Any) -> dict:
            return values

        @bentoml.api(route="/predict_batch", input_spec=batch)
        def predict_batch(self, records: list[Any]) -> dict:
            return {}

    doc = json.loads(json.dumps(Documented.openapi_spec.asdict()))
    patch(doc, api_key=False, max_body_bytes=MAX_BODY)
    predict = doc["paths"]["/predict"]["post"]
    assert predict["requestBody"]["required"] is True
    fields = predict["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert fields["thal"]["nullable"] is True and None in fields["thal"]["enum"]
    assert fields["chol"]["nullable"] is True
    assert "nullable" not in fields["age"]
    assert doc["components"]["schemas"]["InvalidArgument"]["properties"]["detail"][
        "type"] == "array"
    assert {"413", "415", "503"} <= set(doc["paths"]["/predict_batch"]["post"]["responses"])


def serve_docs(status: int, body: bytes, path: str = DOCS_PATH,
               chunks: int = 1) -> tuple[dict, bytes]:
    """GET `path` through the middleware in front of an app answering `status` and `body`
    in `chunks` pieces; (the start message, the body) as the client receives them."""

    async def app(scope: dict, receive, send) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        size = -(-len(body) // chunks)
        for i in range(chunks):
            await send({"type": "http.response.body", "body": body[i * size:(i + 1) * size],
                        "more_body": i < chunks - 1})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    middleware = OpenAPIPatchMiddleware(app, api_key=True, max_body_bytes=MAX_BODY,
                                        info={"title": "t", "version": "1"})
    asyncio.run(middleware({"type": "http", "method": "GET", "path": path, "headers": []},
                           receive, send))
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("chunks", [1, 3])
def test_the_middleware_serves_the_patched_document_with_its_new_length(chunks: int) -> None:
    start, body = serve_docs(200, json.dumps(bentoml_like()).encode(), chunks=chunks)
    headers = dict(start["headers"])
    assert start["status"] == 200 and int(headers[b"content-length"]) == len(body)
    assert [k for k, _ in start["headers"]].count(b"content-length") == 1
    assert json.loads(body) == patched(api_key=True, info={"title": "t", "version": "1"})


def test_the_middleware_passes_errors_and_other_paths_unchanged() -> None:
    failed = b'{"error": "Failed to generate OpenAPI spec"}'
    start, body = serve_docs(500, failed)
    assert start["status"] == 500 and body == failed
    document = json.dumps(bentoml_like()).encode()
    start, body = serve_docs(200, document, path="/schema.json", chunks=2)
    assert body == document and dict(start["headers"])[b"content-length"] == str(
        len(document)).encode()
