"""Engineered features stay finite, and every record the spec allows is scored, on every preset.

Found by fuzzing the served breast_cancer model: `mean_radius = 5e-324` passed validation
(min 0), made the ratio `worst_to_mean_radius` infinite, and scikit-learn refused the row
("Input X contains infinity"): a 500 for a schema-valid request.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from contract.features import SpecFeatures
from contract.spec import DatasetSpec, available_datasets, load_dataset_spec
from inference.predictor import records_to_frame
from tests.conftest import CLEVELAND, FIXTURES, small_config
from training.data import Dataset, load_dataset
from training.pipelines import build_candidates

CALIFORNIA_SAMPLE = FIXTURES / "california_housing" / "housing_sample.csv"
# Data for each preset without the network: scikit-learn's bundles and tests/fixtures.
DATA = {"heart": CLEVELAND, "california_housing": CALIFORNIA_SAMPLE}
# A random forest scores in float32: anything above this becomes inf and is refused.
FLOAT32_MAX = float(np.finfo(np.float32).max)
SUBNORMAL = 5e-324


def _dataset(name: str) -> Dataset:
    return load_dataset(load_dataset_spec(name), DATA.get(name))


def _fit_all(dataset: Dataset) -> dict[str, Any]:
    candidates = build_candidates(dataset.spec, small_config())
    return {c.name: c.pipeline.fit(dataset.features, dataset.target) for c in candidates}


def _typical(dataset: Dataset) -> dict[str, Any]:
    """A real training row as the service receives it (spec columns, JSON-like values)."""
    row = dataset.features.iloc[0].to_dict()
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def _assert_scored(dataset: Dataset, pipelines: dict[str, Any], records: list[dict]) -> None:
    frame = records_to_frame(dataset.spec, records)
    for name, pipeline in pipelines.items():
        if not dataset.spec.is_classifier:
            out = pipeline.predict(frame)
        else:
            out = pipeline.predict_proba(frame)
            assert np.allclose(out.sum(axis=1), 1.0), name
        assert out.shape[0] == len(records), name
        assert np.isfinite(out).all(), (name, out)


def _engineered_numeric(spec: DatasetSpec, out: pd.DataFrame) -> np.ndarray:
    names = [e.name for e in spec.engineered_features if e.output_type == "numeric"]
    return out[names].to_numpy(dtype="float64")


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[Dataset, dict[str, Any]]:
    dataset = _dataset("breast_cancer")
    return dataset, _fit_all(dataset)


def test_subnormal_denominator_gives_a_missing_ratio_not_infinity() -> None:
    spec = load_dataset_spec("breast_cancer")
    row = _typical(_dataset("breast_cancer")) | {"mean_radius": SUBNORMAL}
    out = SpecFeatures.from_spec(spec).transform(pd.DataFrame([row]))
    assert np.isinf(row["worst_radius"] / SUBNORMAL)  # what the pipeline used to compute
    assert np.isnan(out.loc[0, "worst_to_mean_radius"])
    assert np.isfinite(out.loc[0, "area_per_perimeter"])


@pytest.mark.parametrize(("name", "values", "feature"), [
    ("iris", {"petal_length": 1e200, "petal_width": 1e200}, "petal_area"),          # product
    ("iris", {"petal_length": 1e308, "sepal_length": 1e-10}, "petal_to_sepal_length"),  # ratio
    ("heart", {"thalach": 1e308, "age": -1e308}, "heart_rate_reserve"),             # difference
    ("diabetes", {"bmi": -1e300, "bp": 1e300}, "bmi_x_bp"),                         # product
])
def test_overflow_gives_a_missing_value_not_infinity(name, values, feature) -> None:
    # Out of the spec's ranges (the service refuses them), but the transformer itself must
    # never hand scikit-learn an infinity.
    dataset = _dataset(name)
    row = _typical(dataset) | values
    out = SpecFeatures.from_spec(dataset.spec).transform(pd.DataFrame([row]))
    assert np.isnan(out.loc[0, feature])
    engineered = _engineered_numeric(dataset.spec, out)
    assert not np.isinf(engineered).any()


def test_breast_cancer_pipelines_score_a_subnormal_mean_radius(breast_cancer) -> None:
    """The fuzzer's record, through every trained candidate (the spec no longer allows it,
    but models registered under the old spec, with min 0, still accept it)."""
    dataset, pipelines = breast_cancer
    typical = _typical(dataset)
    records = [typical | {"mean_radius": SUBNORMAL},
               typical | {"mean_radius": 0.0},
               typical | {"mean_radius": SUBNORMAL, "mean_perimeter": SUBNORMAL},
               typical | {"worst_concavity": 3.0, "worst_concave_points": 0.6}]
    _assert_scored(dataset, pipelines, records)


@pytest.mark.parametrize("name", available_datasets())
def test_every_numeric_feature_has_a_finite_float32_safe_range(name) -> None:
    spec = load_dataset_spec(name)
    for feature in spec.features:
        if not feature.is_numeric:
            continue
        assert feature.min is not None and feature.max is not None, feature.name
        assert -FLOAT32_MAX < feature.min <= feature.max < FLOAT32_MAX, feature.name
    by_name = {f.name: f for f in spec.features}
    for eng in spec.engineered_features:
        if eng.kind == "ratio":
            # A denominator that may be tiny but positive makes the ratio unbounded.
            low, high = by_name[eng.inputs[1]].min, by_name[eng.inputs[1]].max
            assert low > 0 or high < 0, f"{eng.name}: denominator range includes 0"


def _extreme_records(dataset: Dataset) -> list[dict[str, Any]]:
    """Records at the corners of the spec's ranges, the worst case of each engineered feature."""
    spec = dataset.spec
    by_name = {f.name: f for f in spec.features}
    numeric = [f for f in spec.features if f.is_numeric]
    typical = _typical(dataset)

    def bound(name: str, which: str) -> float | int:
        feature = by_name[name]
        value = getattr(feature, which)
        return int(value) if feature.type == "integer" else value

    records = [typical | {f.name: bound(f.name, "min") for f in numeric},
               typical | {f.name: bound(f.name, "max") for f in numeric}]
    for eng in spec.engineered_features:
        if eng.kind == "bins":
            continue
        first, second = eng.inputs
        for a, b in (("max", "min"), ("min", "max"), ("max", "max"), ("min", "min")):
            records.append(typical | {first: bound(first, a), second: bound(second, b)})
    missing = {f.name: None for f in spec.features if f.missing}
    if missing:
        records.append(typical | missing)
    return records


@pytest.mark.parametrize("name", available_datasets())
def test_every_candidate_scores_the_extremes_of_the_spec(name) -> None:
    dataset = _dataset(name)
    records = _extreme_records(dataset)
    # Each record is one the service accepts: within every range the spec declares.
    for record in records:
        for feature in dataset.spec.features:
            value = record[feature.name]
            if value is not None and feature.is_numeric:
                assert feature.min <= value <= feature.max
    _assert_scored(dataset, _fit_all(dataset), records)
