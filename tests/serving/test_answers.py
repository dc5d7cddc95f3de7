"""The API's answers from model output rows (serving/answers.py), per task, with the real
presets' specs: the predicted class, its probabilities in the spec's class order, the binary
positive-class probability with its risk level, and the V2 output tensors."""

from __future__ import annotations

import numpy as np
import pytest

from contract.spec import load_dataset_spec
from serving.answers import Formatter
from serving.config import RiskThresholds

RISK = RiskThresholds(medium=0.3, high=0.7)


def formatter(dataset: str) -> Formatter:
    spec = load_dataset_spec(dataset)
    return Formatter(spec, list(spec.target.classes or []), RISK, "the-model", "7")


def test_a_binary_answer_names_the_class_its_probabilities_and_the_risk() -> None:
    f = formatter("breast_cancer")
    assert f.classes == ["benign", "malignant"] and f.spec.target.positive_class == "malignant"
    answer = f.answer(np.array([0.2, 0.8]))
    assert answer == {
        "model_name": "the-model", "model_version": "7",
        "prediction": "malignant",
        "probabilities": {"benign": 0.2, "malignant": 0.8},
        "probability": 0.8, "risk_level": "high",
    }
    assert all(type(p) is float for p in answer["probabilities"].values())  # JSON numbers


@pytest.mark.parametrize(("positive", "level"), [(0.1, "low"), (0.3, "medium"),
                                                 (0.5, "medium"), (0.7, "high")])
def test_the_probability_and_risk_are_the_positive_class_s(positive: float, level: str) -> None:
    answer = formatter("breast_cancer").answer(np.array([1 - positive, positive]))
    assert answer["probability"] == pytest.approx(positive)
    assert answer["risk_level"] == level
    assert answer["prediction"] == ("malignant" if positive > 0.5 else "benign")


def test_a_multiclass_answer_has_no_binary_fields() -> None:
    f = formatter("iris")
    answer = f.answer(np.array([0.1, 0.7, 0.2]))
    assert answer == {
        "model_name": "the-model", "model_version": "7",
        "prediction": f.classes[1],
        "probabilities": dict(zip(f.classes, [0.1, 0.7, 0.2], strict=True)),
    }


def test_a_row_of_the_wrong_width_is_an_error_not_a_short_answer() -> None:
    with pytest.raises(ValueError):
        formatter("iris").answer(np.array([0.5, 0.5]))


def test_a_regression_answer_is_the_number() -> None:
    answer = formatter("diabetes").answer(np.float32(151.5))
    assert answer == {"model_name": "the-model", "model_version": "7", "prediction": 151.5}
    assert type(answer["prediction"]) is float


def test_v2_outputs_of_a_classifier_are_labels_and_row_major_probabilities() -> None:
    f = formatter("iris")
    answers = [f.answer(np.array([0.1, 0.7, 0.2])), f.answer(np.array([0.6, 0.3, 0.1]))]
    predict, proba = f.v2_outputs(answers)
    assert predict == {"name": "predict", "shape": [2], "datatype": "BYTES",
                                    "data": [f.classes[1], f.classes[0]]}
    assert proba == {"name": "predict_proba", "shape": [2, 3], "datatype": "FP64",
                                  "data": [0.1, 0.7, 0.2, 0.6, 0.3, 0.1]}


def test_v2_outputs_of_a_regressor_are_one_fp64_tensor() -> None:
    f = formatter("diabetes")
    answers = [f.answer(151.5), f.answer(80.25), f.answer(0.0)]
    assert f.v2_outputs(answers) == [
        {"name": "predict", "shape": [3], "datatype": "FP64", "data": [151.5, 80.25, 0.0]}]


@pytest.mark.parametrize("dataset", ["breast_cancer", "iris", "diabetes"])
def test_a_batch_of_rows_answers_as_each_row_alone(dataset) -> None:
    f = formatter(dataset)
    rng = np.random.default_rng(7)
    rows = (rng.dirichlet(np.ones(len(f.classes)), size=5) if f.classes
            else rng.normal(150, 50, size=5).astype(np.float32))
    rows[1] = rows[0]  # ties between rows change nothing; ties within a row: first class
    assert f.answers(rows) == [f.answer(row) for row in rows]
    assert all(type(a["prediction"]) is (float if not f.classes else str)
               for a in f.answers(rows))


@pytest.mark.parametrize(("dataset", "row"), [
    ("breast_cancer", [0.2, 0.8]), ("iris", [0.1, 0.7, 0.2]), ("california_housing", 2.5)])
def test_a_stamped_answer_encodes_as_the_answer_model_would(dataset: str, row) -> None:
    """POST /predict sends the stamped answer encoded as it is (service.py): the bytes must
    be those of the documented answer model, fields in its order."""
    from datetime import UTC, datetime

    from pydantic_core import to_json

    from serving.request_ids import stamped
    from serving.schema import prediction_model

    f = formatter(dataset)
    answer = stamped(f.answers(np.array([row])), ["req-1"], datetime.now(UTC))[0]
    model = prediction_model(f.spec)
    assert to_json(answer) == model.model_validate(answer).model_dump_json().encode()


@pytest.mark.parametrize(("dataset", "rows"), [
    ("breast_cancer", [[0.2, 0.8], [0.9, 0.1]]), ("iris", [[0.1, 0.7, 0.2]]),
    ("california_housing", [2.5, 1.25])])
@pytest.mark.parametrize("request_id", [None, "client-7"])
def test_a_v2_answer_encodes_as_the_infer_response_model_would(dataset: str, rows,
                                                               request_id) -> None:
    """V2 infer sends its answer as built (service.py): the bytes of InferResponse's."""
    from pydantic_core import to_json

    from serving.v2 import InferResponse

    f = formatter(dataset)
    answers = f.answers(np.array(rows))
    body = {"model_name": "the-model", "model_version": "7", "id": request_id,
            "parameters": {"request_id": "r", "timestamp": "t"},
            "outputs": f.v2_outputs(answers)}
    assert to_json(body) == InferResponse.model_validate(body).model_dump_json().encode()
