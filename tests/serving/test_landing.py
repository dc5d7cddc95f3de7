"""The page at `/` (serving/landing.py), rendered alone (no server): every value from the spec
is escaped, the page can load nothing, its curl lines send the example record, and the
middleware answers GET / and HEAD / only. tests/service/test_landing_page.py loads it in
Chromium from a real server."""

from __future__ import annotations

import asyncio
import json
import shlex
from html.parser import HTMLParser
from typing import Any

import pytest

from contract.spec import DatasetSpec, load_dataset_spec
from serving.landing import CSP, DEFAULT_BASE_URL, LandingPageMiddleware, base_url, render
from serving.landing_examples import curl, request_bodies, v2_request
from serving.model_store import ServedModel
from serving.openapi import openapi_info, patch

HOSTILE = "<script>alert(1)</script>\"'><img src=https://evil.example/x onerror=alert(2)>"
TAGS = {"html", "head", "meta", "link", "title", "style", "body", "header", "main", "footer",
        "section", "div", "h1", "h2", "h3", "p", "span", "strong", "code", "pre", "dl", "dt",
        "dd", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "a"}


def served(preset: str = "heart", raw: dict[str, Any] | None = None) -> ServedModel:
    """A preset's model as the service would hold it (or one of the spec `raw`)."""
    spec = DatasetSpec.model_validate(raw or load_dataset_spec(preset).model_dump())
    example = {f.name: f.choices[0] if f.is_categorical
               else (f.min if f.min is not None else 1.5) for f in spec.features}
    metrics = {"regression": {"rmse": 53.21, "mae": 42.0, "r2": 0.47}}.get(
        spec.task, {"accuracy": 0.8512, "roc_auc": 0.9})
    return ServedModel(
        tag=f"{spec.model_name}:v1abc", name=spec.model_name, version="v1abc", spec=spec,
        metadata={"classes": spec.target.classes, "holdout_metrics": metrics,
                  "selection_metric": spec.selection_metric, "candidate": "rf",
                  "trained_at": "2026-11-22T10:00:00Z"},
        labels={}, example=example)


def hostile() -> ServedModel:
    """heart, with markup and quotes in every free-text field and in a category."""
    raw = load_dataset_spec("heart").model_dump()
    raw["description"] = HOSTILE
    raw["source"]["citation"] = HOSTILE
    raw["target"]["description"] = HOSTILE
    for feature in raw["features"]:
        feature["description"] = HOSTILE
        if feature["name"] == "cp":
            feature["values"] = [HOSTILE, "it's"]
        if feature["name"] == "age":
            feature["unit"] = HOSTILE
    for feature in raw["engineered_features"]:
        feature["description"] = HOSTILE
    model = served(raw=raw)
    return ServedModel(**{**model.__dict__, "example": {**model.example, "cp": "it's"}})


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


@pytest.mark.parametrize("model", [served("heart"), served("iris"), served("diabetes"),
                                   hostile()], ids=["heart", "iris", "diabetes", "hostile"])
def test_the_page_can_load_nothing_and_shows_every_value_as_text(model: ServedModel) -> None:
    page = render(model)
    elements = parse(page)
    assert {tag for tag, _ in elements.tags} <= TAGS  # no script, img, iframe, form, ...
    for tag, attrs in elements.tags:
        assert not any(name.startswith("on") or name in ("src", "srcset", "style", "action")
                       for name in attrs), (tag, attrs)
        if "href" in attrs:  # links to this server's own routes; the favicon is inline
            assert attrs["href"].startswith("/") or attrs["href"] == "data:,", attrs
    assert ("meta", {"http-equiv": "Content-Security-Policy", "content": CSP}) in elements.tags
    text = "".join(elements.text)
    assert model.name in text and f"version {model.version}" in text
    assert model.spec.name in text
    for feature in model.spec.features:
        assert feature.name in text and feature.description in text
    if model.spec.source.citation:
        assert model.spec.source.citation in text
    for name in model.metadata["holdout_metrics"]:
        assert name in text
    for label in model.classes:
        assert label in text
    assert "BentoML Team" not in page and "googletagmanager" not in page


def test_spec_text_with_markup_arrives_as_text() -> None:
    model = hostile()
    page = render(model)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = "".join(parse(page).text)
    assert text.count(HOSTILE) >= len(model.spec.features) + 3  # descriptions, data set, ...
    assert "one of " + HOSTILE + ", it's" in text


@pytest.mark.parametrize("model", [served("heart"), served("diabetes"), hostile()],
                         ids=["heart", "diabetes", "hostile"])
@pytest.mark.parametrize("auth", [False, True])
def test_each_curl_line_sends_the_example_record(model: ServedModel, auth: bool) -> None:
    wanted = {"/predict": model.example, "/predict_batch": {"records": [model.example]},
              f"/v2/models/{model.name}/infer": v2_request(model, model.example)}
    bodies = request_bodies(model, 1000)
    assert [path for _, path, _ in bodies] == list(wanted)
    for _, path, body in bodies:
        args = shlex.split(curl("http://10.0.0.5:3000", path, body, auth).replace("\\\n", ""))
        assert args[:4] == ["curl", "-s", "-X", "POST"]
        assert args[4] == f"http://10.0.0.5:3000{path}"
        assert json.loads(args[args.index("-d") + 1]) == wanted[path]
        assert ("Authorization: Bearer $API_KEY" in args) is auth


def test_with_an_api_key_the_page_asks_for_it_and_keeps_metrics_to_model_info() -> None:
    page = render(served("heart"), api_key=True)
    text = "".join(parse(page).text)
    assert "needs an API key" in text and "Authorization: Bearer $API_KEY" in text
    assert "0.8512" not in text and "2026-11-22T10:00:00Z" not in text
    assert "0.8512" in "".join(parse(render(served("heart"))).text)


@pytest.mark.parametrize(("host", "expected"), [
    (b"127.0.0.1:3000", "http://127.0.0.1:3000"),
    (b"models.internal", "http://models.internal"),
    (b"[::1]:8080", "http://[::1]:8080"),
    (b"evil.example/$(reboot)", DEFAULT_BASE_URL),
    (b"a'b", DEFAULT_BASE_URL),
    (b"a\"><script>", DEFAULT_BASE_URL),
    (b"\xff", DEFAULT_BASE_URL),
    (b"", DEFAULT_BASE_URL),
])
def test_the_curl_address_is_the_host_header_only_when_plain(host: bytes, expected: str) -> None:
    assert base_url({"scheme": "http", "headers": [(b"host", host)]}) == expected


def test_the_openapi_info_is_the_model_s_own() -> None:
    model = served("iris")
    doc = {"openapi": "3.0.2", "paths": {}, "info": {
        "title": "tabular_service", "version": "None", "description": "BentoML",
        "contact": {"name": "BentoML Team", "email": "contact@bentoml.com"}}}
    info = patch(doc, api_key=False, max_body_bytes=1000, info=openapi_info(model))["info"]
    assert info["title"] == "iris-classifier" and info["version"] == "v1abc"
    assert "contact" not in info
    assert "iris" in info["description"] and "setosa" in info["description"]
    unchanged = patch({"info": {"title": "t", "version": "1"}}, api_key=False,
                      max_body_bytes=1)
    assert unchanged["info"] == {"title": "t", "version": "1"}


def request(method: str, path: str) -> tuple[list[dict], bool]:
    """(messages sent, whether the app behind was called) for one request."""
    called = []

    async def app(scope: dict, receive, send) -> None:
        called.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"behind"})

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    middleware = LandingPageMiddleware(app, served=served("diabetes"), api_key=False,
                                       max_batch_records=50)
    scope = {"type": "http", "method": method, "path": path, "scheme": "http",
             "headers": [(b"host", b"127.0.0.1:4000")]}
    asyncio.run(middleware(scope, receive, send))
    return sent, bool(called)


def test_get_and_head_of_the_root_are_the_page_and_nothing_else_is() -> None:
    sent, passed = request("GET", "/")
    assert not passed and sent[0]["status"] == 200
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"content-security-policy"] == CSP.encode()
    body = sent[1]["body"]
    assert int(headers[b"content-length"]) == len(body)
    assert b"diabetes-regressor" in body and b"http://127.0.0.1:4000/predict" in body
    assert b"1 to 50 records" in body
    head, passed = request("HEAD", "/")
    assert not passed and head[0] == sent[0] and head[1]["body"] == b""
    for method, path in (("POST", "/"), ("GET", "/docs.json"), ("GET", "/index.html"),
                         ("GET", "/predict")):
        _, passed = request(method, path)
        assert passed, (method, path)
