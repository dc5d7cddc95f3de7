"""Drift detection on data that ships with scikit-learn, and the capture it reads."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from contract.spec import load_dataset_spec
from serving.capture import PredictionCapture, read_capture
from serving.drift import compute_drift
from tests.conftest import small_config
from training.data import load_dataset
from training.train import split_data


@pytest.fixture(scope="module")
def breast_cancer():
    dataset = load_dataset(load_dataset_spec("breast_cancer"))
    return dataset, split_data(dataset, small_config())


def _drift(dataset, reference: pd.DataFrame, current: pd.DataFrame):
    return compute_drift(dataset.spec, reference, current, model_name="m", model_version="v")


def test_held_out_rows_do_not_drift(breast_cancer) -> None:
    dataset, split = breast_cancer
    summary = _drift(dataset, split.X_train, split.X_test)
    assert not summary.drift_detected
    assert summary.drift_share < 0.2
    assert summary.window_rows == len(split.X_test) and len(summary.features) == 30


def test_another_population_drifts(breast_cancer) -> None:
    # Production sees only malignant masses (a referral clinic, say): most features shift.
    dataset, split = breast_cancer
    malignant = split.X_test[split.y_test == "malignant"]
    summary = _drift(dataset, split.X_train, malignant)
    assert summary.drift_detected and summary.drift_share >= 0.5
    assert next(f for f in summary.features if f.feature == "worst_radius").drifted


def test_a_recalibrated_instrument_drifts(breast_cancer) -> None:
    dataset, split = breast_cancer
    shifted = split.X_test * 1.25  # every measurement reads 25% high
    assert _drift(dataset, split.X_train, shifted).drift_detected


def test_a_feature_that_stops_arriving_is_reported_not_a_crash(breast_cancer) -> None:
    # Found by the API fuzzer: a window where one feature was always null crashed Evidently.
    dataset, split = breast_cancer
    current = split.X_test.copy()
    current["mean_radius"] = None
    summary = _drift(dataset, split.X_train, current)
    radius = next(f for f in summary.features if f.feature == "mean_radius")
    assert radius.drifted and radius.method == "all values missing"
    assert len(summary.features) == 30
    assert 0 < summary.drift_share < 0.2  # one of 30, plus whatever Evidently finds


def test_categorical_features_use_categorical_tests(tmp_path) -> None:
    from tests.conftest import CLEVELAND

    dataset = load_dataset(load_dataset_spec("heart"), CLEVELAND)
    summary = _drift(dataset, dataset.features.iloc[:150], dataset.features.iloc[150:])
    methods = {f.feature: f.method for f in summary.features}
    assert "K-S" in methods["age"]
    assert "chi-square" in methods["cp"] or "Z-test" in methods["cp"]


def test_capture_is_bounded_drains_at_close_and_leaves_out_sensitive_features(tmp_path) -> None:
    capture = PredictionCapture(tmp_path, model_name="m", model_version="v", max_bytes=20_000,
                                backup_count=2, exclude={"secret"})
    records = [{"x": float(i), "secret": "id-123"} for i in range(3000)]
    capture.record(records, [{"prediction": "a"}] * len(records))
    capture.close()
    files = sorted(tmp_path.glob("capture-*.jsonl*"))
    assert len(files) == 3  # the current file and backup_count rotated ones: bounded
    assert all(f.stat().st_size <= 20_000 + 200 for f in files)
    lines = read_capture(tmp_path, "m", last=10_000)
    assert lines[-1]["features"] == {"x": 2999.0}  # the last record made it to disk
    assert all("secret" not in line["features"] for line in lines)
    assert "id-123" not in "".join(f.read_text() for f in files)
    assert json.loads(files[0].read_text().splitlines()[0])["model_version"] == "v"
