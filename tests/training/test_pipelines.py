"""Code and behaviour tests of the pipelines: raw records in, predictions out."""

import itertools

import numpy as np
import pandas as pd
import pytest

from contract.features import SpecFeatures
from contract.spec import load_dataset_spec
from tests.conftest import CLEVELAND, small_config
from training.data import load_dataset
from training.pipelines import build_candidates


@pytest.fixture(scope="module")
def heart():
    return load_dataset(load_dataset_spec("heart"), CLEVELAND)


@pytest.fixture(scope="module")
def fitted(heart):
    candidates = build_candidates(heart.spec, small_config())
    return {c.name: c.pipeline.fit(heart.features, heart.target) for c in candidates}


def test_each_task_has_linear_forest_and_boosting_candidates() -> None:
    for name in ("breast_cancer", "iris", "diabetes"):
        names = [c.name for c in build_candidates(load_dataset_spec(name), small_config())]
        assert len(names) >= 3 and "random_forest" in names and "gradient_boosting" in names


def test_engineered_features_are_computed_from_the_spec(heart) -> None:
    out = SpecFeatures.from_spec(heart.spec).fit(heart.features).transform(heart.features)
    assert np.allclose(out["chol_per_age"], heart.features["chol"] / heart.features["age"])
    assert np.allclose(out["heart_rate_reserve"], heart.features["thalach"] - heart.features["age"])
    assert set(out["age_group"].dropna()) <= {"under_45", "45_to_54", "55_to_64", "65_plus"}
    assert out.loc[heart.features["age"] == 50, "age_group"].eq("45_to_54").all()


def test_ratio_with_zero_denominator_is_missing_not_infinite() -> None:
    spec = load_dataset_spec("california_housing")
    row = {f.name: 1.0 for f in spec.features} | {"ocean_proximity": "INLAND", "households": 0}
    out = SpecFeatures.from_spec(spec).transform(pd.DataFrame([row]))
    assert np.isnan(out.loc[0, "rooms_per_household"])


def test_predictions_do_not_depend_on_column_order(heart, fitted) -> None:
    shuffled = heart.features[heart.features.columns[::-1]]
    for model in fitted.values():
        assert np.allclose(model.predict_proba(heart.features), model.predict_proba(shuffled))


def test_category_spelling_does_not_matter(heart, fitted) -> None:
    as_ints = heart.features.copy()
    for column in ("cp", "restecg", "slope", "thal"):
        as_ints[column] = pd.to_numeric(as_ints[column])  # 3.0 instead of "3"
    for model in fitted.values():
        assert np.allclose(model.predict_proba(heart.features), model.predict_proba(as_ints))


def test_unknown_category_and_missing_values_still_predict(heart, fitted) -> None:
    row = heart.features.head(1).copy()
    row["thal"] = "99"
    row["chol"] = np.nan
    for model in fitted.values():
        proba = model.predict_proba(row)
        assert proba.shape == (1, 2) and np.isclose(proba.sum(), 1.0)


def test_missing_feature_column_is_a_clear_error(heart, fitted) -> None:
    with pytest.raises(KeyError, match="chol"):
        fitted["logistic_regression"].predict(heart.features.drop(columns=["chol"]))


def test_more_severe_findings_do_not_lower_the_risk(heart, fitted) -> None:
    # Behaviour: more diseased vessels (ca) must not lower the linear model's disease risk.
    model = fitted["logistic_regression"]
    base = heart.features.head(20).copy()
    risks = [model.predict_proba(base.assign(ca=float(v)))[:, 1] for v in range(4)]
    assert all((later >= earlier - 1e-9).all() for earlier, later in itertools.pairwise(risks))
