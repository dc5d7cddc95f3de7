"""Access and request limits: API key, content type, body size, CORS closed by default."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Server, serve_dataset
from tests.service.test_service import records

pytestmark = pytest.mark.slow  # a real `bentoml serve` with an API key

KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def guarded_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from serve_dataset(tmp_path_factory.mktemp("guarded"), "iris",
                             extra_env={"API_KEY": KEY})


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_prediction_needs_the_key(guarded_server) -> None:
    url, row = guarded_server.url, records(guarded_server, 1)[0]
    missing = httpx.post(f"{url}/predict", json=row)
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    assert httpx.post(f"{url}/predict", json=row, headers=auth("wrong")).status_code == 401
    assert httpx.post(f"{url}/predict", json=row, headers=auth()).status_code == 200
    for path in ("/model_info", "/drift", "/v2/models/iris-classifier"):
        assert httpx.get(f"{url}{path}").status_code == 401, path


def test_probes_and_metrics_stay_open(guarded_server) -> None:
    url = guarded_server.url
    for path in ("/readyz", "/livez", "/metrics", "/v2/health/live", "/v2/health/ready",
                 "/v2/models/iris-classifier/ready"):
        assert httpx.get(f"{url}{path}").status_code == 200, path


def test_wrong_content_type_is_415(guarded_server) -> None:
    response = httpx.post(f"{guarded_server.url}/predict", content=b"sepal_length=5",
                          headers=auth() | {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_oversized_bodies_are_refused_before_parsing(guarded_server) -> None:
    url, row = guarded_server.url, records(guarded_server, 1)[0]
    headers = auth() | {"Content-Type": "application/json"}
    big = b'{"records": [' + b",".join([json.dumps(row).encode()] * 60_000) + b"]}"
    assert httpx.post(f"{url}/predict_batch", content=big, headers=headers).status_code == 413

    def chunked():  # no Content-Length: the guard counts as it reads
        yield b'{"records": ['
        for _ in range(60_000):
            yield json.dumps(row).encode() + b","
        yield json.dumps(row).encode() + b"]}"

    assert httpx.post(f"{url}/predict_batch", content=chunked(),
                      headers=headers).status_code == 413

    def small():
        yield json.dumps({"records": [row] * 3}).encode()

    assert httpx.post(f"{url}/predict_batch", content=small(), headers=headers).status_code == 200


def test_cors_is_closed_by_default(guarded_server) -> None:
    response = httpx.options(f"{guarded_server.url}/predict", headers={
        "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def test_posts_without_a_body_pass_the_guard(guarded_server) -> None:
    # POST /drift/check has no body: neither 415 nor 413, but the endpoint's own answer.
    response = httpx.post(f"{guarded_server.url}/drift/check", headers=auth(), timeout=120)
    assert response.status_code in (200, 409), response.text


def test_neither_the_key_nor_rejected_values_reach_the_log(guarded_server) -> None:
    url, row = guarded_server.url, records(guarded_server, 1)[0]
    marker = "PII-7f3a9c"
    first = next(iter(row))
    bad_bodies = [
        {**row, first: marker},  # wrong type
        {"records": [row, {**row, first: marker}]},  # in a batch
        {"inputs": [{"name": first, "shape": [1], "datatype": "BYTES", "data": [marker]}]},
    ]
    paths = ["/predict", "/predict_batch", "/v2/models/iris-classifier/infer"]
    for path, body in zip(paths, bad_bodies, strict=True):
        answer = httpx.post(f"{url}{path}", json=body, headers=auth())
        assert answer.status_code == 400, (path, answer.text)
    malformed = httpx.post(f"{url}/predict", content=f'{{"{first}": "{marker}"',
                           headers=auth() | {"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert httpx.post(f"{url}/predict", json=row, headers=auth(marker)).status_code == 401
    log = guarded_server.log.read_text()
    assert marker not in log and KEY not in log
    # The rejection is still logged, by field and rule only.
    assert f"Rejected POST /predict: {first}: " in log
