"""Alert rules under promtool, and a real Prometheus scraping the real service."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from loadtests.server import free_port
from tests.service.test_service import records

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "tabular-serving.json"

needs_prometheus = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="Debian's prometheus package is missing: scripts/setup-system.sh installs it",
)


@needs_prometheus
def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    check = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=PROMETHEUS_DIR,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 7 rules found" in check.stdout
    tested = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_prometheus
def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())[
        "groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    assert alerts == tested


@pytest.fixture
def prometheus(heart_server, tmp_path):
    """Prometheus on a loopback port, scraping the test service every second."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [
        {"targets": [heart_server.url.removeprefix("http://")]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    check = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    process = subprocess.Popen(
        ["prometheus", f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(tmp_path / "prometheus.log").open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _query(url: str, expr: str) -> list[dict]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def _wait_for(url: str, expr: str, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := _query(url, expr):
            return result
        time.sleep(1)
    raise AssertionError(f"Prometheus found nothing for {expr}")


@needs_prometheus
def test_prometheus_scrapes_the_service_metrics(heart_server, prometheus) -> None:
    url = heart_server.url
    httpx.post(f"{url}/predict_batch", json={"records": records(heart_server, 30)})
    httpx.post(f"{url}/predict", json=dict(records(heart_server, 1)[0], chol=1.0))
    httpx.post(f"{url}/drift/check", timeout=120)
    assert _wait_for(prometheus, 'up{job="tabular-serving"} == 1')
    classes = {r["metric"]["predicted_class"] for r in _wait_for(
        prometheus, 'tabular_predictions_total{model_name="heart-disease-classifier"}')}
    assert classes <= {"absent", "present"} and classes
    assert _wait_for(prometheus, 'tabular_validation_failures_total{field="chol"}')
    share = _wait_for(prometheus, "tabular_drift_share")
    assert 0 <= float(share[0]["value"][1]) <= 1
    assert _wait_for(prometheus, "tabular_model_ready == 1")
    assert _wait_for(prometheus, "bentoml_service_request_duration_seconds_bucket")
    # The alert rules load and evaluate against the live series.
    rules = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {"TabularHighErrorRatio", "TabularModelNotReady"}
    assert all(r["health"] != "err" for r in rules), rules


@needs_prometheus
def test_dashboard_queries_parse_and_find_series(heart_server, prometheus) -> None:
    """Every panel's query finds series once the traffic it charts has happened."""
    dashboard = json.loads(DASHBOARD.read_text())
    url = heart_server.url
    httpx.post(f"{url}/predict_batch", json={"records": records(heart_server, 30)})
    for record in records(heart_server, 5):
        httpx.post(f"{url}/predict", json=record)
    httpx.post(f"{url}/predict", json=dict(records(heart_server, 1)[0], chol=1.0))  # a 400
    assert httpx.post(f"{url}/drift/check", timeout=120).status_code == 200
    # rate() needs two scrapes of the series.
    _wait_for(prometheus, "rate(tabular_model_call_rows_count[1m])")
    _wait_for(prometheus, 'rate(bentoml_service_request_total{endpoint="/predict"}[1m])')
    _wait_for(prometheus, "tabular_feature_drifted")
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m")
            expr = re.sub(r'=~"\$\w+"', '=~".*"', expr)
            if not _query(prometheus, expr):
                empty.append(panel["title"])
    # BentoML exports its 5xx series at 0 from the start, so even the error ratio answers.
    assert empty == [], empty
