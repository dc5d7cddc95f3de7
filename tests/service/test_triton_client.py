"""A real Open Inference Protocol client: NVIDIA's `tritonclient.http`, used unmodified,
against the real server. It sends no Content-Type header at all; the V2 routes take such a
body as JSON. Its binary tensor extension is refused with 415 and what to send instead."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.servers import Server
from tests.service.test_service import records

pytestmark = pytest.mark.slow


def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.url.removeprefix("http://"),
                                        network_timeout=60.0)


def complete_records(server: Server, n: int) -> list[dict]:
    """The first `n` records without a missing value: a JSON tensor has no null."""
    rows = [r for r in records(server, 4 * n) if None not in r.values()]
    assert len(rows) >= n
    return rows[:n]


def tensors(server: Server, rows: list[dict], binary: bool = False) -> list[triton.InferInput]:
    """One input tensor per feature, shape [N]. Strings go as BYTES; integers (integer and
    binary features, integer-coded categories) as INT64, since validation is strict
    (63.0 is not an integer); everything else as FP64."""
    inputs = []
    for feature in server.dataset.spec.features:
        column = [row[feature.name] for row in rows]
        if all(isinstance(v, str) for v in column):
            array, datatype = np.array(column, dtype=np.object_), "BYTES"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in column):
            array, datatype = np.array(column, dtype=np.int64), "INT64"
        else:
            array, datatype = np.array(column, dtype=np.float64), "FP64"
        tensor = triton.InferInput(feature.name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def infer(server: Server, rows: list[dict], outputs: list[str]) -> dict[str, np.ndarray]:
    result = client(server).infer(
        server.model_name, tensors(server, rows), request_id="triton-1",
        outputs=[triton.InferRequestedOutput(name, binary_data=False) for name in outputs])
    response = result.get_response()
    assert response["model_name"] == server.model_name and response["id"] == "triton-1"
    return {name: result.as_numpy(name) for name in outputs}


def predictions(server: Server, rows: list[dict]) -> list[dict]:
    """What POST /predict answers for each record."""
    answers = [httpx.post(f"{server.url}/predict", json=row, timeout=30) for row in rows]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return [a.json() for a in answers]


@pytest.mark.parametrize("fixture", ["heart_server", "iris_server", "diabetes_server"])
def test_health_metadata_and_readiness(fixture: str, request: pytest.FixtureRequest) -> None:
    server: Server = request.getfixturevalue(fixture)
    triton_client = client(server)
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready(server.model_name)
    assert not triton_client.is_model_ready("no-such-model")
    meta = triton_client.get_model_metadata(server.model_name)
    assert meta["name"] == server.model_name
    assert [i["name"] for i in meta["inputs"]] == server.dataset.spec.feature_names
    expected = ["predict", "predict_proba"] if server.dataset.spec.is_classifier else [
        "predict"]
    assert [o["name"] for o in meta["outputs"]] == expected
    with pytest.raises(InferenceServerException, match="unknown model"):
        triton_client.get_model_metadata("no-such-model")


@pytest.mark.parametrize("fixture", ["heart_server", "iris_server"])
def test_classifier_infer_equals_predict(fixture: str, request: pytest.FixtureRequest) -> None:
    server: Server = request.getfixturevalue(fixture)
    rows = complete_records(server, 5)
    outputs = infer(server, rows, ["predict", "predict_proba"])
    answers = predictions(server, rows)
    classes = server.dataset.spec.target.classes
    labels = [label.decode() if isinstance(label, bytes) else label
              for label in outputs["predict"].tolist()]
    assert labels == [a["prediction"] for a in answers]
    assert outputs["predict_proba"].shape == (5, len(classes))
    expected = np.array([[a["probabilities"][c] for c in classes] for a in answers])
    np.testing.assert_allclose(outputs["predict_proba"], expected, rtol=0, atol=1e-9)


def test_regressor_infer_equals_predict(diabetes_server: Server) -> None:
    rows = complete_records(diabetes_server, 5)
    outputs = infer(diabetes_server, rows, ["predict"])
    expected = [a["prediction"] for a in predictions(diabetes_server, rows)]
    assert outputs["predict"].dtype == np.float64 and outputs["predict"].shape == (5,)
    np.testing.assert_allclose(outputs["predict"], expected, rtol=0, atol=1e-9)


def test_invalid_inputs_get_the_servers_reason(heart_server: Server) -> None:
    rows = complete_records(heart_server, 2)
    rows[1]["age"] = 500
    with pytest.raises(InferenceServerException, match="validation error") as raised:
        client(heart_server).infer(heart_server.model_name, tensors(heart_server, rows))
    assert raised.value.status() == "400"


def test_binary_tensors_are_refused_with_what_to_send(heart_server: Server) -> None:
    rows = complete_records(heart_server, 2)
    with pytest.raises(InferenceServerException, match="binary_data=False") as raised:
        client(heart_server).infer(heart_server.model_name,
                                   tensors(heart_server, rows, binary=True))
    assert raised.value.status() == "415"
    assert "JSON tensors" in raised.value.message()
    # The server still serves, the same client included.
    outputs = infer(heart_server, rows, ["predict"])
    assert len(outputs["predict"]) == 2
    assert client(heart_server).is_server_ready()
