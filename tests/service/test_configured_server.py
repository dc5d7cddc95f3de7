"""Settings of configs/serving.yaml that change what a running server does: the periodic
drift check's interval, the CORS origins, the risk-level thresholds, BentoML's access log
and tracing. One `bentoml serve` with all of them changed from the test defaults."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from serving.config import RiskThresholds
from tests.servers import ROOT, Server, serve_dataset
from tests.service.test_service import metric, records

INTERVAL_S = 4
ALLOWED = "https://dashboard.example"
THRESHOLDS = {"medium": 0.15, "high": 0.5}  # configs/serving.yaml: 0.3 and 0.7


@pytest.fixture(scope="module")
def configured_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from serve_dataset(tmp_path_factory.mktemp("configured"), "heart", config={
        "monitoring": {"drift": {"interval_s": INTERVAL_S}},
        "cors_allow_origins": [ALLOWED],
        "risk_thresholds": THRESHOLDS,
        "access_log": True,
        "tracing": True,
    })


def _drift_summary(url: str, *, rows_at_least: int, after: float = 0.0,
                   timeout: float = 90) -> dict:
    """GET /drift (never POST /drift/check) until a periodic check has seen the rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/drift")
        if answer.status_code == 200:
            summary = answer.json()
            if summary["window_rows"] >= rows_at_least and summary["checked_at"] > after:
                return summary
        time.sleep(0.5)
    raise AssertionError(f"no periodic drift check saw {rows_at_least} rows within {timeout}s "
                         f"(interval_s={INTERVAL_S}); last answer: {answer.text}")


def test_the_drift_check_runs_by_itself_every_interval(configured_server) -> None:
    url = configured_server.url
    rows = records(configured_server, 90)
    assert httpx.post(f"{url}/predict_batch", json={"records": rows[:30]}).status_code == 200
    first = _drift_summary(url, rows_at_least=30)
    # More traffic: a later check picks it up, again without being asked.
    assert httpx.post(f"{url}/predict_batch", json={"records": rows[30:80]}).status_code == 200
    second = _drift_summary(url, rows_at_least=80, after=first["checked_at"])
    assert second["model_name"] == "heart-disease-classifier"
    assert 0 <= second["drift_share"] <= 1
    assert len(second["features"]) == 12  # 13 less sex, kept out of the capture
    # The checks are interval_s apart (the loop sleeps interval_s between checks), not
    # back to back: consecutive checks with nothing new in between.
    third = _drift_summary(url, rows_at_least=80, after=second["checked_at"])
    assert third["checked_at"] - second["checked_at"] >= INTERVAL_S - 0.5
    # Worker 1 exports each check on /metrics.
    deadline = time.monotonic() + 30
    while True:
        text = httpx.get(f"{url}/metrics").text
        checked = metric(text, "tabular_drift_last_check_timestamp_seconds")
        if checked >= third["checked_at"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert checked >= third["checked_at"]
    assert metric(text, "tabular_drift_window_rows") >= 80


def _preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(f"{url}/predict", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_cors_opens_to_the_configured_origins_only(configured_server) -> None:
    url, row = configured_server.url, records(configured_server, 1)[0]
    allowed = _preflight(url, ALLOWED)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    other = _preflight(url, "https://elsewhere.example")
    assert "access-control-allow-origin" not in other.headers

    answer = httpx.post(f"{url}/predict", json=row, headers={"Origin": ALLOWED})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    answer = httpx.post(f"{url}/predict", json=row, headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 200  # not a browser: answered, but no browser may read it
    assert "access-control-allow-origin" not in answer.headers
    # V2 infer and /predict are answered by the fast path, outside BentoML's CORS middleware
    # (serving/fast_path.py); the batch endpoint by BentoML's route: all three say the same.
    name = httpx.get(f"{url}/model_info").json()["model_name"]
    v2 = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str)
                      else "INT64" if isinstance(v, int) else "FP64", "data": [v]}
                     for k, v in row.items() if v is not None]}
    for path, body in ((f"/v2/models/{name}/infer", v2), ("/predict_batch", {"records": [row]})):
        answer = httpx.post(f"{url}{path}", json=body, headers={"Origin": ALLOWED})
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["access-control-allow-origin"] == ALLOWED, path


def test_risk_levels_follow_the_configured_thresholds(configured_server) -> None:
    url = configured_server.url
    rows = records(configured_server, 50, start=100)
    answers = httpx.post(f"{url}/predict_batch", json={"records": rows}).json()["predictions"]
    configured = RiskThresholds(**THRESHOLDS)
    default = RiskThresholds(**yaml.safe_load(
        (ROOT / "configs" / "serving.yaml").read_text())["risk_thresholds"])
    assert [a["risk_level"] for a in answers] == [configured.level(a["probability"])
                                                   for a in answers]
    # The same records under the committed thresholds would get other levels: the answer
    # follows the config, not constants that happen to agree with it.
    changed = [a for a in answers
               if default.level(a["probability"]) != configured.level(a["probability"])]
    assert changed, [a["probability"] for a in answers]
    single = httpx.post(f"{url}/predict", json=rows[answers.index(changed[0])]).json()
    assert single["risk_level"] == configured.level(single["probability"])


def test_access_log_and_tracing_run_only_when_switched_on(configured_server,
                                                         heart_server) -> None:
    # The header is set from the request's span: only when BentoML's tracing middleware ran.
    for server, on in ((configured_server, True), (heart_server, False)):
        answer = httpx.post(f"{server.url}/predict", json=records(server, 1)[0])
        assert answer.status_code == 200
        assert ("x-bentoml-request-id" in answer.headers) is on, server.url
    deadline = time.monotonic() + 10
    while "path=/predict" not in configured_server.log.read_text():
        assert time.monotonic() < deadline, "no access log line for /predict"
        time.sleep(0.2)
    assert "path=/predict" not in heart_server.log.read_text()
