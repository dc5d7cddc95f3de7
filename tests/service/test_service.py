"""Integration tests: HTTP against a real `bentoml serve` of a model trained in this run."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import mlflow
import numpy as np
import pytest

from loadtests.loadgen import closed_loop
from serving.model_store import example_record
from tests.servers import Server


def records(server: Server, n: int, start: int = 0) -> list[dict]:
    frame = server.dataset.features.iloc[start:start + n]
    return [example_record(server.dataset.spec, row) for row in frame.to_dict("records")]


def metric(text: str, name: str, *, absent_ok: bool = False, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`. A series that is not there
    fails the test (a renamed or unexported metric must not read as 0), unless `absent_ok`
    (a counter before its first increment)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found or absent_ok, f"no {name} series with {labels} on /metrics"
    return total


def assert_same_answers(first: list[dict], second: list[dict]) -> None:
    """Equal up to float rounding: a matrix product over 40 rows may round differently."""
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a.keys() - {"request_id", "timestamp"}:  # each record's own
            if key == "probabilities" or isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], abs=1e-9)
            else:
                assert a[key] == b[key]


def test_single_answer_has_the_binary_fields(heart_server) -> None:
    answer = httpx.post(f"{heart_server.url}/predict", json=records(heart_server, 1)[0]).json()
    assert answer["prediction"] in ("absent", "present")
    assert set(answer["probabilities"]) == {"absent", "present"}
    assert answer["probability"] == pytest.approx(answer["probabilities"]["present"])
    assert answer["risk_level"] in ("low", "medium", "high")
    assert answer["model_name"] == "heart-disease-classifier"
    assert re.fullmatch(r"v\d+-[0-9a-f]{8}", answer["model_version"])
    assert uuid.UUID(answer["request_id"]) and "+00:00" in answer["timestamp"]


def test_batch_equals_single_equals_mlflow_champion(heart_server) -> None:
    rows = records(heart_server, 40)
    batch = httpx.post(f"{heart_server.url}/predict_batch", json={"records": rows}).json()
    singles = [httpx.post(f"{heart_server.url}/predict", json=r).json() for r in rows]
    assert_same_answers(batch["predictions"], singles)

    champion = mlflow.sklearn.load_model("models:/heart-disease-classifier@champion")
    frame = heart_server.dataset.features.iloc[:40]
    expected = champion.predict_proba(frame)[:, list(champion.classes_).index("present")]
    served = np.array([p["probability"] for p in batch["predictions"]])
    assert np.allclose(served, expected)
    labels = mlflow.pyfunc.load_model("models:/heart-disease-classifier@champion").predict(frame)
    assert [p["prediction"] for p in batch["predictions"]] == list(labels)


def test_missing_values_are_accepted_where_the_spec_allows(heart_server) -> None:
    row = records(heart_server, 1)[0]
    row["chol"] = None
    del row["thal"]
    response = httpx.post(f"{heart_server.url}/predict", json=row)
    assert response.status_code == 200, response.text


def test_model_info(heart_server) -> None:
    info = httpx.get(f"{heart_server.url}/model_info").json()
    assert info["model_name"] == "heart-disease-classifier"
    assert info["task"] == "binary" and info["classes"] == ["absent", "present"]
    assert info["mlflow_model_version"] == "1" and len(info["mlflow_run_id"]) == 32
    assert "roc_auc" in info["holdout_metrics"] and info["trained_at"]
    assert [f["name"] for f in info["features"]][:3] == ["age", "sex", "cp"]


def test_openapi_documents_every_constraint(heart_server) -> None:
    doc = httpx.get(f"{heart_server.url}/docs.json").json()
    record = doc["components"]["schemas"]["HeartRecord"]
    assert record["properties"]["chol"]["anyOf"][0]["maximum"] == 700
    assert record["properties"]["cp"]["enum"] == [1, 2, 3, 4]
    assert "age" in record["required"] and "chol" not in record["required"]
    assert record["additionalProperties"] is False
    for path in ("/predict", "/predict_batch", "/model_info", "/v2/models/{name}/infer"):
        assert path in doc["paths"]
    # Patched over BentoML's document (serving/openapi.py): every answer is declared.
    predict = doc["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "415", "503"} <= set(predict["responses"])
    assert "401" not in predict["responses"]  # no API key configured on this server
    body = predict["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert body["thal"]["nullable"] and None in body["thal"]["enum"]
    assert "nullable" not in body["age"]
    detail = doc["components"]["schemas"]["InvalidArgument"]["properties"]["detail"]
    assert detail["type"] == "array" and "loc" in detail["items"]["properties"]
    assert httpx.get(f"{heart_server.url}/").status_code == 200  # Swagger UI


def test_v2_protocol(heart_server) -> None:
    url, name = heart_server.url, heart_server.model_name
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{url}/v2/models/{name}").json()
    assert meta["name"] == name and [i["name"] for i in meta["inputs"]][:2] == ["age", "sex"]
    rows = records(heart_server, 3)
    request = {"id": "r1", "inputs": [
        {"name": f, "shape": [3], "datatype": "FP64", "data": [r[f] for r in rows]}
        for f in rows[0]
    ]}
    answer = httpx.post(f"{url}/v2/models/{name}/infer", json=request).json()
    outputs = {o["name"]: o for o in answer["outputs"]}
    singles = [httpx.post(f"{url}/predict", json=r).json() for r in rows]
    assert answer["id"] == "r1" and answer["model_name"] == name
    assert outputs["predict"]["data"] == [s["prediction"] for s in singles]
    assert outputs["predict_proba"]["shape"] == [3, 2]
    assert np.allclose(outputs["predict_proba"]["data"][1::2], [s["probability"] for s in singles])


def test_v2_errors(heart_server) -> None:
    url, name = heart_server.url, heart_server.model_name
    assert httpx.get(f"{url}/v2/models/other").status_code == 404
    rows = records(heart_server, 2)
    rows[1]["age"] = 500
    request = {"inputs": [
        {"name": f, "shape": [2], "datatype": "FP64", "data": [r[f] for r in rows]}
        for f in rows[0]
    ]}
    response = httpx.post(f"{url}/v2/models/{name}/infer", json=request)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["inputs", "age", 1]
    request["inputs"][0]["shape"] = [5]
    assert httpx.post(f"{url}/v2/models/{name}/infer", json=request).status_code == 400


def test_metrics_move_after_requests(heart_server) -> None:
    url = heart_server.url
    before = httpx.get(f"{url}/metrics").text
    rows = records(heart_server, 10, start=50)
    httpx.post(f"{url}/predict_batch", json={"records": rows})
    bad = dict(rows[0], chol=1.0)
    httpx.post(f"{url}/predict", json=bad)
    after = httpx.get(f"{url}/metrics").text
    name = heart_server.model_name
    assert metric(after, "tabular_predictions_total", model_name=name) == \
        metric(before, "tabular_predictions_total", model_name=name, absent_ok=True) + 10
    assert metric(after, "tabular_prediction_confidence_count") == \
        metric(before, "tabular_prediction_confidence_count", absent_ok=True) + 10
    assert metric(after, "tabular_validation_failures_total", field="chol") == \
        metric(before, "tabular_validation_failures_total", field="chol", absent_ok=True) + 1
    name = "tabular_model_call_rows_sum"
    assert metric(after, name) - metric(before, name, absent_ok=True) >= 10
    assert metric(after, "tabular_model_call_seconds_count") > \
        metric(before, "tabular_model_call_seconds_count", absent_ok=True)


def _burst_in_batches(server: Server, metric_name: str, **labels: str) -> float:
    """Average rows per model call during a burst that must be answered completely."""
    url = server.url
    before = httpx.get(f"{url}/metrics").text
    outcome = asyncio.run(closed_loop(f"{url}/predict", records(server, 50), clients=48,
                                      total=1500))
    after = httpx.get(f"{url}/metrics").text
    # Zero failures: no 500 from the dependency client's session recycling, no 503 shedding.
    assert outcome.statuses == {200: 1500}, outcome.summary()
    rows = metric(after, f"{metric_name}_sum", **labels) - \
        metric(before, f"{metric_name}_sum", absent_ok=True, **labels)
    calls = metric(after, f"{metric_name}_count", **labels) - \
        metric(before, f"{metric_name}_count", absent_ok=True, **labels)
    assert rows == 1500
    return rows / calls


def test_concurrent_burst_is_answered_completely_in_batches(heart_server) -> None:
    average = _burst_in_batches(heart_server, "tabular_model_call_rows")
    assert average > 2, f"average batch {average:.2f}: the micro-batcher did not form batches"


def test_concurrent_burst_through_the_model_service(heart_service_mode_server) -> None:
    # BentoML's adaptive batching behind bentoml.depends: the path of both upstream defects.
    average = _burst_in_batches(heart_service_mode_server, "bentoml_service_adaptive_batch_size",
                                method_name="score")
    assert average > 2, f"average batch {average:.2f}: BentoML did not form batches"
    answer = httpx.post(f"{heart_service_mode_server.url}/predict",
                        json=records(heart_service_mode_server, 1)[0]).json()
    assert answer["model_name"] == "heart-disease-classifier"


def test_multiclass_service(iris_server) -> None:
    rows = records(iris_server, 3)
    answer = httpx.post(f"{iris_server.url}/predict", json=rows[0]).json()
    assert set(answer["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert "probability" not in answer and "risk_level" not in answer
    batch = httpx.post(f"{iris_server.url}/predict_batch", json={"records": rows}).json()
    assert_same_answers(batch["predictions"][:1], [answer])


def test_regression_service(diabetes_server) -> None:
    rows = records(diabetes_server, 3)
    answer = httpx.post(f"{diabetes_server.url}/predict", json=rows[0]).json()
    assert isinstance(answer["prediction"], float) and "probabilities" not in answer
    champion = mlflow.sklearn.load_model("models:/diabetes-regressor@champion")
    assert answer["prediction"] == pytest.approx(
        champion.predict(diabetes_server.dataset.features.iloc[:1])[0])
    metrics = httpx.get(f"{diabetes_server.url}/metrics").text
    assert metric(metrics, "tabular_predicted_value_count") >= 1
    request = {"inputs": [{"name": f, "shape": [3], "datatype": "FP64",
                           "data": [r[f] for r in rows]} for f in rows[0]]}
    v2 = httpx.post(f"{diabetes_server.url}/v2/models/diabetes-regressor/infer", json=request)
    assert v2.json()["outputs"][0]["datatype"] == "FP64"


def test_capture_and_drift_endpoints(heart_server) -> None:
    url = heart_server.url
    rows = records(heart_server, 40, start=100)
    assert httpx.post(f"{url}/predict_batch", json={"records": rows}).status_code == 200
    summary = httpx.post(f"{url}/drift/check", timeout=120).json()
    assert summary["window_rows"] >= 40 and 0 <= summary["drift_share"] <= 1
    assert {f["feature"] for f in summary["features"]} == \
        set(heart_server.dataset.spec.feature_names) - {"sex"}  # sex is not captured
    assert httpx.get(f"{url}/drift").json()["checked_at"] == summary["checked_at"]
    report = httpx.get(f"{url}/drift/report")
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    metrics = httpx.get(f"{url}/metrics").text
    assert metric(metrics, "tabular_drift_window_rows") == summary["window_rows"]
    assert metric(metrics, "tabular_drift_share") == pytest.approx(summary["drift_share"])
    assert metric(metrics, "tabular_feature_drifted", feature="age") in (0.0, 1.0)
