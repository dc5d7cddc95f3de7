"""The compiled path answers as the pipeline does, for every preset and candidate; anything it
cannot reproduce falls back to scikit-learn with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from contract.features import SpecFeatures
from contract.spec import load_dataset_spec
from inference.compiled import CompiledModel
from inference.predictor import SklearnPredictor
from tests.conftest import CLEVELAND, FIXTURES, small_config
from training.compile import check_records, compile_pipeline
from training.data import load_dataset
from training.pipelines import build_candidates

DATA = {"heart": CLEVELAND,
        "california_housing": FIXTURES / "california_housing" / "housing_sample.csv"}
PRESETS = ["breast_cancer", "iris", "diabetes", "heart", "california_housing"]


def _fitted(name: str):
    dataset = load_dataset(load_dataset_spec(name), DATA.get(name))
    train = dataset.features.iloc[::2]
    check = dataset.features.iloc[1::2].head(150)
    target = dataset.target.iloc[::2]
    fitted = [(c.name, c.pipeline.fit(train, target))
              for c in build_candidates(dataset.spec, small_config())]
    return dataset.spec, fitted, check


@pytest.fixture(scope="module", params=PRESETS)
def preset(request):
    return _fitted(request.param)


def test_every_candidate_of_every_preset_compiles_with_parity(preset) -> None:
    spec, fitted, check = preset
    for name, pipeline in fitted:
        outcome = compile_pipeline(pipeline, spec, check)
        assert outcome.model is not None, f"{spec.name}/{name}: {outcome.reason}"
        assert outcome.parity["max_abs_diff"] <= 1e-6 and outcome.parity["label_mismatches"] == 0
        # Rows it was not checked on, with missing values: still the pipeline's answers.
        rows = check.iloc[::-1].head(40).copy().astype(object)
        rows.iloc[::3, 0] = None
        records = check_records(rows)
        expected = SklearnPredictor(spec, pipeline).predict(records)
        # Within the parity tolerance: onnxruntime's tree operators answer in float32.
        assert np.allclose(outcome.model.predict(records), expected, rtol=0, atol=1e-6)


def test_unknown_categories_score_as_the_pipeline_does() -> None:
    spec, fitted, check = _fitted("heart")
    categorical = [f.name for f in spec.features if f.type == "categorical"]
    assert categorical, "the heart spec has categorical features"
    records = check_records(check.head(20))
    for record in records:
        record[categorical[0]] = "never-seen"
    for name, pipeline in fitted:
        model = compile_pipeline(pipeline, spec, check).model
        expected = SklearnPredictor(spec, pipeline).predict(records)
        assert np.allclose(model.predict(records), expected, rtol=0, atol=1e-6), name


@pytest.mark.parametrize("name", ["heart", "diabetes"])
def test_forests_try_onnx_then_treelite_and_say_why(name) -> None:
    spec, fitted, check = _fitted(name)
    forest = dict(fitted)["random_forest"]
    outcome = compile_pipeline(forest, spec, check)
    if spec.is_classifier:  # probabilities: onnxruntime's float32 answer is within 1e-6
        assert outcome.engine == "onnx", outcome.reason
        assert 0 < outcome.parity["max_abs_diff"] <= 1e-6
        # Heart's forest has exact ties (15 votes of 30) that float32 orders differently
        # from scikit-learn; the exact treelite copy scores those rows, so labels agree.
        assert outcome.parity["label_mismatches"] == 0
        if name == "heart":
            bare = CompiledModel.from_dict(outcome.model.to_dict() | {"tie_breaker": None})
            from training.compile import check_parity

            assert check_parity(forest, bare, spec, check)["label_mismatches"] > 0
    else:  # values in the hundreds: float32 misses parity, so the exact treelite form
        assert outcome.engine == "treelite" and "onnx:" in outcome.reason, outcome.reason
        assert outcome.parity["max_abs_diff"] <= 1e-9
    exact = compile_pipeline(forest, spec, check, tree_engines=["treelite"])
    assert exact.engine == "treelite" and exact.parity["max_abs_diff"] <= 1e-9
    assert compile_pipeline(forest, spec, check, tree_engines=["onnx"]).engine == (
        "onnx" if spec.is_classifier else "sklearn")


def test_a_step_the_plan_does_not_know_falls_back_to_sklearn_with_the_reason() -> None:
    spec = load_dataset_spec("breast_cancer")
    dataset = load_dataset(spec)
    pipeline = Pipeline([
        ("preprocess", Pipeline([
            ("features", SpecFeatures.from_spec(spec)),
            ("columns", ColumnTransformer([("numeric", MinMaxScaler(), spec.feature_names)])),
        ])),
        ("model", LogisticRegression(max_iter=2000)),
    ]).fit(dataset.features, dataset.target)
    outcome = compile_pipeline(pipeline, spec, dataset.features.head(50))
    assert outcome.model is None and outcome.engine == "sklearn"
    assert "MinMaxScaler" in outcome.reason


def test_parity_is_enforced_not_just_measured(preset) -> None:
    spec, fitted, check = preset
    _, pipeline = fitted[0]
    exact = compile_pipeline(pipeline, spec, check)
    assert exact.model is not None
    # A plan that scales one column wrongly must fail the gate.
    block = next(b for b in exact.model.plan.blocks if b.scale is not None)
    block.scale = [s * 1.01 for s in block.scale]
    broken = CompiledModel.from_dict(exact.model.to_dict())
    from training.compile import check_parity

    parity = check_parity(pipeline, broken, spec, check)
    assert parity["max_abs_diff"] > 1e-6
    # And a tolerance tighter than the float error refuses even an exact conversion.
    strict = compile_pipeline(pipeline, spec, check, tolerance=1e-30)
    if exact.parity["max_abs_diff"] > 0:
        assert strict.model is None and "parity failed" in strict.reason


def test_saved_and_loaded_forms_answer_identically(tmp_path: Path) -> None:
    spec, fitted, check = _fitted("iris")
    records = check_records(check)
    for name, pipeline in fitted:
        model = compile_pipeline(pipeline, spec, check).model
        model.save(tmp_path / name)
        loaded = CompiledModel.load(tmp_path / name)
        again = CompiledModel.from_dict(model.to_dict())
        assert np.array_equal(loaded.predict(records), model.predict(records))
        assert np.array_equal(again.predict(records), model.predict(records))
        assert loaded.engine == model.engine and loaded.classes == model.classes


def test_an_unknown_format_is_refused_with_what_to_do() -> None:
    spec, fitted, check = _fitted("iris")
    data = compile_pipeline(fitted[0][1], spec, check).model.to_dict() | {"format": 99}
    with pytest.raises(ValueError, match="retrain"):
        CompiledModel.from_dict(data)


def test_records_are_read_by_name_not_position() -> None:
    spec, fitted, check = _fitted("diabetes")
    model = compile_pipeline(fitted[0][1], spec, check).model
    records = check_records(check.head(10))
    reordered = [dict(reversed(list(r.items()))) for r in records]
    assert np.array_equal(model.predict(records), model.predict(reordered))
    frame = pd.DataFrame(records)
    assert np.array_equal(model.predict(frame.to_dict("records")), model.predict(records))


def test_frames_score_as_records_and_the_model_pickles() -> None:
    import pickle

    for name in ("heart", "diabetes"):
        spec, fitted, check = _fitted(name)
        records = check_records(check.head(30))
        frame = pd.DataFrame.from_records(records, columns=spec.feature_names)
        for _, pipeline in fitted:
            model = compile_pipeline(pipeline, spec, check).model
            shipped = pickle.loads(pickle.dumps(model))
            assert np.array_equal(model.predict_frame(frame), model.predict(records))
            assert np.array_equal(shipped.predict(records), model.predict(records))
