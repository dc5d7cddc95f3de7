"""Every preset's champion is served by its compiled form, and answers as the MLflow champion
(the scikit-learn pipeline) does; `engine: sklearn` switches back."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import mlflow
import numpy as np
import pytest

from inference.predictor import SklearnPredictor
from tests.servers import Server, serve_dataset
from tests.service.test_service import assert_same_answers, records

# Starts real servers through fixtures looked up at run time: slow, whatever the hook sees.
pytestmark = pytest.mark.slow


def served_values(server: Server, rows: list[dict]) -> np.ndarray:
    response = httpx.post(f"{server.url}/predict_batch", json={"records": rows}, timeout=30)
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    if server.dataset.spec.is_classifier:
        classes = server.dataset.spec.target.classes
        return np.array([[a["probabilities"][c] for c in classes] for a in answers])
    return np.array([a["prediction"] for a in answers])


def champion_values(server: Server, rows: list[dict]) -> np.ndarray:
    spec = server.dataset.spec
    pipeline = mlflow.sklearn.load_model(f"models:/{spec.model_name}@champion")
    out = SklearnPredictor(spec, pipeline).predict(rows)
    if spec.is_classifier:
        order = [list(pipeline.classes_).index(c) for c in spec.target.classes]
        return out[:, order]
    return out


@pytest.mark.parametrize("fixture", ["heart_server", "iris_server", "diabetes_server"])
def test_champion_is_served_compiled_with_the_pipelines_answers(fixture, request) -> None:
    server: Server = request.getfixturevalue(fixture)
    info = httpx.get(f"{server.url}/model_info").json()
    assert info["engine"] in ("treelite", "onnx"), info.get("compiled")
    assert info["compiled"]["parity"]["max_abs_diff"] <= 1e-6
    rows = records(server, 50)
    # A record with every value the spec lets be missing left out: the imputers' path.
    optional = {f.name for f in server.dataset.spec.features if f.missing}
    rows[1] = {k: (None if k in optional else v) for k, v in rows[1].items()}
    assert np.allclose(served_values(server, rows), champion_values(server, rows),
                       rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def heart_sklearn_server(trained_store, tmp_path_factory) -> Iterator[Server]:
    yield from serve_dataset(tmp_path_factory.mktemp("heart-sklearn"), "heart",
                             config={"engine": "sklearn"})


def test_engine_sklearn_serves_the_pipeline_with_the_same_answers(
        heart_sklearn_server, heart_server) -> None:
    assert httpx.get(f"{heart_sklearn_server.url}/model_info").json()["engine"] == "sklearn"
    rows = records(heart_server, 40)
    answers = [httpx.post(f"{s.url}/predict_batch", json={"records": rows}).json()["predictions"]
               for s in (heart_sklearn_server, heart_server)]
    assert_same_answers(*answers)
