"""Bad HTTP input, table-driven: every case gets a clear 4xx naming the field and the rule
(or what to send instead), and the server keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.servers import MAX_BATCH
from tests.service.test_service import records

pytestmark = pytest.mark.slow  # a real `bentoml serve` (tests/servers.py)

JSON = "application/json"
MAX_BODY_BYTES = 4_000_000  # configs/serving.yaml
DEEP = 100_000


class Raw(str):
    """Literal JSON text for a value, where json.dumps would not write it (NaN, 1e400)."""


def record_with(**changes: object) -> str:
    """A valid heart record (Cleveland's first row) with `changes`, as raw JSON text."""
    row = {"age": 63, "sex": 1, "cp": 1, "trestbps": 145.0, "chol": 233.0, "fbs": 1,
           "restecg": 2, "thalach": 150.0, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0,
           "thal": 6} | changes
    text = json.dumps({k: v for k, v in row.items() if not isinstance(v, Raw)})
    for key, value in changes.items():
        if isinstance(value, Raw):  # each key once: no duplicate keys in the JSON
            text = text[:-1] + f', "{key}": {value}}}'
    return text


def batch_of(*texts: str) -> str:
    return '{"records": [' + ",".join(texts) + "]}"


# (case, path, body, content type, status, (loc, rule) expected in the 400's detail)
CASES = [
    ("malformed JSON", "/predict", '{"age": 5', JSON, 400, ([], "json_invalid")),
    ("not JSON at all", "/predict", "hello", JSON, 400, ([], "json_invalid")),
    ("invalid UTF-8", "/predict", b"\xff\xfe{}", JSON, 400, ([], "json_invalid")),
    ("empty body", "/predict", "", JSON, 400, (["age"], "missing")),
    ("an array, not an object", "/predict", "[1, 2]", JSON, 400, ([], "model_type")),
    ("form data", "/predict", "age=63&sex=1", "application/x-www-form-urlencoded", 415, None),
    ("no content type", "/predict", record_with(), "", 415, None),
    ("NaN", "/predict", record_with(oldpeak=Raw("NaN")), JSON, 400,
     (["oldpeak"], "finite_number")),
    ("Infinity", "/predict", record_with(chol=Raw("Infinity")), JSON, 400,
     (["chol"], "finite_number")),
    ("-Infinity", "/predict", record_with(thalach=Raw("-Infinity")), JSON, 400,
     (["thalach"], "finite_number")),
    ("huge float", "/predict", record_with(chol=Raw("1e400")), JSON, 400,
     (["chol"], "finite_number")),
    ("huge integer", "/predict", record_with(age=10**30), JSON, 400,
     (["age"], "less_than_equal")),
    ("5,000-digit integer", "/predict", record_with(age=Raw("9" * 5000)), JSON, 400,
     ([], "json_invalid")),
    ("string for a number", "/predict", record_with(chol="250"), JSON, 400,
     (["chol"], "float_type")),
    ("string for an integer", "/predict", record_with(age="63"), JSON, 400,
     (["age"], "int_type")),
    ("boolean for a category", "/predict", record_with(exang=True), JSON, 400,
     (["exang"], "literal_error")),
    ("float for an integer category", "/predict", record_with(cp=1.0), JSON, 400,
     (["cp"], "literal_error")),
    ("null where none is allowed", "/predict", record_with(age=None), JSON, 400,
     (["age"], "int_type")),
    ("missing field", "/predict", record_with().replace('"age": 63, ', ""), JSON, 400,
     (["age"], "missing")),
    ("over the maximum", "/predict", record_with(chol=5000.0), JSON, 400,
     (["chol"], "less_than_equal")),
    ("under the minimum", "/predict", record_with(trestbps=10.0), JSON, 400,
     (["trestbps"], "greater_than_equal")),
    ("unknown category", "/predict", record_with(cp=9), JSON, 400, (["cp"], "literal_error")),
    ("unknown field", "/predict", record_with(colour="blue"), JSON, 400,
     (["colour"], "extra_forbidden")),
    ("deep nesting", "/predict", "[" * DEEP + "]" * DEEP, JSON, 400, ([], "json_invalid")),
    ("deep nesting in a field", "/predict",
     '{"age": ' + "[" * DEEP + "]" * DEEP + "}", JSON, 400, ([], "json_invalid")),
    ("empty batch", "/predict_batch", '{"records": []}', JSON, 400, (["records"], "too_short")),
    ("batch not a list", "/predict_batch", '{"records": "many"}', JSON, 400,
     (["records"], "list_type")),
    ("batch without records", "/predict_batch", "{}", JSON, 400, (["records"], "missing")),
    ("over-limit batch", "/predict_batch", batch_of(*[record_with()] * (MAX_BATCH + 1)), JSON,
     400, (["records"], "too_long")),
    ("bad record in a batch", "/predict_batch",
     batch_of(record_with(), record_with(), record_with(cp=9)), JSON, 400,
     (["records", 2, "cp"], "literal_error")),
    ("body over the size limit", "/predict_batch",
     '{"records": [' + " " * MAX_BODY_BYTES + "]}", JSON, 413, None),
]


@pytest.mark.parametrize(("path", "body", "content_type", "status", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_gets_a_clear_4xx(heart_server, path, body, content_type, status,
                                    expected) -> None:
    headers = {"Content-Type": content_type}  # "" is sent as an empty header
    data = body.encode() if isinstance(body, str) else body
    response = httpx.post(f"{heart_server.url}{path}", content=data, headers=headers,
                          timeout=60)
    assert response.status_code == status, response.text[:500]
    answer = response.json()
    assert isinstance(answer["error"], str) and answer["error"]
    if expected is not None:
        loc, rule = expected
        found = [(d["loc"], d["type"]) for d in answer["detail"]]
        assert (loc, rule) in found, found
        assert all(d["msg"] for d in answer["detail"])


def test_the_server_still_serves_after_the_bad_input(heart_server) -> None:
    assert httpx.get(f"{heart_server.url}/readyz").status_code == 200
    row = records(heart_server, 1)[0]
    assert httpx.post(f"{heart_server.url}/predict", json=row).status_code == 200
    assert "Traceback" not in heart_server.log.read_text()
