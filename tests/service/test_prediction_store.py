"""The prediction store through a real `bentoml serve`: request ids, history, feedback and
online metrics against scikit-learn on the same rows (SQLite, the default)."""

from __future__ import annotations

import time
import uuid

import httpx
import mlflow
import numpy as np
import pytest
from sklearn import metrics

from tests.conftest import small_config
from tests.servers import Server
from tests.service.test_service import metric, records
from training.train import split_data

pytestmark = pytest.mark.slow


def wait_for(url: str, path: str, timeout: float = 20.0, **params: object) -> httpx.Response:
    """GET until 200: records reach the store within flush_interval_s of their answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}{path}", params=params)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_answers_carry_request_ids_and_times(heart_server: Server) -> None:
    url, rows = heart_server.url, records(heart_server, 3)
    mine = httpx.post(f"{url}/predict", json=rows[0], headers={"X-Request-ID": "client-42"})
    assert mine.json()["request_id"] == "client-42" == mine.headers["x-request-id"]
    fresh = httpx.post(f"{url}/predict", json=rows[0])
    assert str(uuid.UUID(fresh.json()["request_id"])) == fresh.headers["x-request-id"]
    assert fresh.json()["timestamp"].endswith("+00:00")
    # An id that could not be stored or put in a URL is replaced, and the header says so.
    odd = httpx.post(f"{url}/predict", json=rows[0], headers={"X-Request-ID": "a b/c"})
    assert uuid.UUID(odd.headers["x-request-id"])
    batch = httpx.post(f"{url}/predict_batch", json={"records": rows},
                       headers={"X-Request-ID": "batch-7"})
    assert [p["request_id"] for p in batch.json()["predictions"]] == \
        ["batch-7.0", "batch-7.1", "batch-7.2"]
    assert batch.headers["x-request-id"] == "batch-7"
    request = {"id": "v2-own", "inputs": [{"name": f, "shape": [3], "datatype": "FP64",
                                           "data": [r[f] for r in rows]} for f in rows[0]]}
    v2 = httpx.post(f"{url}/v2/models/{heart_server.model_name}/infer", json=request,
                    headers={"X-Request-ID": "v2-9"}).json()
    assert v2["id"] == "v2-own" and v2["parameters"]["request_id"] == "v2-9"
    assert v2["parameters"]["request_ids"] == ["v2-9.0", "v2-9.1", "v2-9.2"]
    doc = httpx.get(f"{url}/docs.json").json()["components"]["schemas"]["HeartPrediction"]
    assert {"request_id", "timestamp"} <= set(doc["required"])
    assert doc["properties"]["timestamp"]["format"] == "date-time"


def test_history_holds_every_answer_with_features_and_pages(heart_server: Server) -> None:
    url, rows = heart_server.url, records(heart_server, 5, start=20)
    answer = httpx.post(f"{url}/predict", json=rows[0], headers={"X-Request-ID": "hist-1"})
    stored = wait_for(url, "/predictions/hist-1").json()
    expected = answer.json()
    assert stored["answer"]["prediction"] == expected["prediction"]
    assert stored["answer"]["probabilities"] == pytest.approx(expected["probabilities"])
    assert stored["timestamp"] == expected["timestamp"] and stored["endpoint"] == "predict"
    assert stored["model_version"] == expected["model_version"] and stored["feedback"] is None
    assert stored["features"] == {k: v for k, v in rows[0].items() if k != "sex"}  # excluded
    httpx.post(f"{url}/predict_batch", json={"records": rows}, headers={"X-Request-ID": "hp"})
    wait_for(url, "/predictions/hp.4")
    since = expected["timestamp"]
    seen, cursor = [], None
    while True:
        page = httpx.get(f"{url}/predictions", params={
            "since": since, "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [item["request_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:5] == ["hp.4", "hp.3", "hp.2", "hp.1", "hp.0"]  # newest first (ties: id)
    assert "hist-1" in seen and len(seen) == len(set(seen))
    assert httpx.get(f"{url}/predictions/no-such-id").status_code == 404
    assert httpx.get(f"{url}/predictions", params={"cursor": "garbage"}).status_code == 400
    assert httpx.get(f"{url}/predictions", params={"limit": 1001}).status_code == 422


def test_feedback_is_validated_and_unknown_ids_reported(heart_server: Server) -> None:
    url = heart_server.url
    httpx.post(f"{url}/predict", json=records(heart_server, 1)[0],
               headers={"X-Request-ID": "fb-1"})
    wait_for(url, "/predictions/fb-1")
    assert httpx.post(f"{url}/feedback", json={"request_id": "fb-1", "actual": "present"}
                      ).json() == {"request_id": "fb-1", "status": "stored"}
    batch = httpx.post(f"{url}/feedback", json={"feedback": [
        {"request_id": "fb-1", "actual": "absent"}, {"request_id": "nope", "actual": "absent"}]})
    assert batch.json()["results"] == [{"request_id": "fb-1", "status": "replaced"},
                                       {"request_id": "nope", "status": "unknown_request_id"}]
    assert wait_for(url, "/predictions/fb-1").json()["feedback"]["actual"] == "absent"
    unknown = httpx.post(f"{url}/feedback", json={"request_id": "nope", "actual": "absent"})
    assert unknown.status_code == 404
    bad = httpx.post(f"{url}/feedback", json={"feedback": [
        {"request_id": "fb-1", "actual": "absent"}, {"request_id": "fb-1", "actual": "maybe"}]})
    assert bad.status_code == 400
    assert [e["loc"] for e in bad.json()["detail"]] == [["feedback", 1, "actual"]]
    too_many = {"feedback": [{"request_id": "x", "actual": "absent"}] * 1001}
    assert httpx.post(f"{url}/feedback", json=too_many).status_code == 422


def replay_with_feedback(server: Server, tag: str) -> tuple[object, list]:
    """The hold-out rows through /predict_batch, then their true targets as feedback."""
    from serving.model_store import example_record

    split = split_data(server.dataset, small_config())
    frame, truth = split.X_test, list(split.y_test)
    rows = [example_record(server.dataset.spec, r) for r in frame.to_dict("records")]
    ids: list[str] = []
    for start in range(0, len(rows), 50):
        chunk = rows[start:start + 50]
        answer = httpx.post(f"{server.url}/predict_batch", json={"records": chunk},
                            headers={"X-Request-ID": f"{tag}-{start}"})
        assert answer.status_code == 200, answer.text
        ids += [p["request_id"] for p in answer.json()["predictions"]]
    # Each chunk may land on another API worker with its own writer, so the last id of
    # one chunk being stored says nothing of the others: wait for every chunk's last.
    for last in ids[49::50] + ids[-1:]:
        assert wait_for(server.url, f"/predictions/{last}").status_code == 200, last
    actual = [t if isinstance(t, str) else float(t) for t in truth]
    result = httpx.post(f"{server.url}/feedback", json={"feedback": [
        {"request_id": i, "actual": a} for i, a in zip(ids, actual, strict=True)]}).json()
    assert result["stored"] == len(ids) and result["unknown_request_id"] == 0
    return frame, truth


def served_version(server: Server) -> str:
    return httpx.get(f"{server.url}/model_info").json()["model_version"]


def online(server: Server, version: str, window: int) -> dict:
    answer = httpx.get(f"{server.url}/performance",
                       params={"model_version": version, "window": window}).json()
    (entry,) = answer["versions"]
    return entry


def test_online_metrics_of_a_classifier_equal_scikit_learns(heart_server: Server) -> None:
    frame, truth = replay_with_feedback(heart_server, "ho")
    champion = mlflow.sklearn.load_model("models:/heart-disease-classifier@champion")
    proba = champion.predict_proba(frame)[:, list(champion.classes_).index("present")]
    version = served_version(heart_server)
    # The window is the newest len(truth) labelled predictions: ours (fb-1 is older).
    entry = online(heart_server, version, len(truth))
    assert entry["labelled"] == len(truth)
    assert entry["online_metrics"]["accuracy"] == pytest.approx(
        metrics.accuracy_score(truth, champion.predict(frame)))
    assert entry["online_metrics"]["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(np.array(truth) == "present", proba))
    assert entry["holdout_metrics"]["roc_auc"] > 0.5 and entry["serving"] is True
    assert entry["selection"]["metric"] == "roc_auc"
    exported = online(heart_server, version, 1000)  # the gauges' window (the configured one)
    deadline = time.monotonic() + 20
    while True:  # one worker refreshes the gauges every metrics_interval_s (2 s here)
        text = httpx.get(f"{heart_server.url}/metrics").text
        gauge = metric(text, "tabular_online_metric", absent_ok=True, model_version=version,
                       metric="roc_auc")
        if gauge == pytest.approx(exported["online_metrics"]["roc_auc"]) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert gauge == pytest.approx(exported["online_metrics"]["roc_auc"])
    assert metric(text, "tabular_holdout_metric", model_version=version, metric="roc_auc") > 0
    assert metric(text, "tabular_store_written_records_total") >= len(truth)


def test_online_rmse_of_a_regressor_equals_scikit_learns(diabetes_server: Server) -> None:
    frame, truth = replay_with_feedback(diabetes_server, "dia")
    champion = mlflow.sklearn.load_model("models:/diabetes-regressor@champion")
    entry = online(diabetes_server, served_version(diabetes_server), len(truth))
    assert entry["labelled"] == len(truth)
    predicted = champion.predict(frame)
    assert entry["online_metrics"]["rmse"] == pytest.approx(
        metrics.root_mean_squared_error(truth, predicted))
    assert entry["online_metrics"]["mae"] == pytest.approx(
        metrics.mean_absolute_error(truth, predicted))
    assert entry["selection"]["holdout"] == entry["holdout_metrics"]["rmse"]
    bad = httpx.post(f"{diabetes_server.url}/feedback",
                     json={"request_id": "dia-0.0", "actual": "high"})
    assert bad.status_code == 400
