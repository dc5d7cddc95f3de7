"""Code and behaviour tests of the pipelines: raw records in, predictions out."""

import itertools
import pickle
import pickletools
import sys

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


def _globals(data: bytes) -> set[str]:
    """Every "module name" a pickle imports: GLOBAL, or STACK_GLOBAL of the two strings pushed
    before it (written out or fetched from the memo)."""
    found: set[str] = set()
    pushed: list[object] = []  # what each push op put on the stack (None: not a string)
    memo: list[object] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(str(arg).replace("\n", " ").strip())
        elif op.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]} {pushed[-1]}")
        elif op.name == "MEMOIZE":
            memo.append(pushed[-1] if pushed else None)
        elif op.name in ("BINGET", "LONG_BINGET"):
            pushed.append(memo[arg] if isinstance(arg, int) and arg < len(memo) else None)
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            pushed.append(arg)
        else:
            pushed.append(None)
    return found


def test_pipelines_pickled_before_the_contract_move_still_load(heart, fitted, monkeypatch) -> None:
    # Pipelines registered before issue 12 name their first step training.features.SpecFeatures;
    # the alias module training/features.py (shipped in the Bento) must keep them loading.
    model = fitted["logistic_regression"]
    new = pickle.dumps(model, protocol=5)  # memoized STACK_GLOBALs
    assert "contract.features SpecFeatures" in _globals(new)
    # The old pickle: the same bytes with the old module path (both names are 17 characters,
    # so no length prefix changes), checked opcode by opcode.
    assert len("contract.features") == len("training.features")
    old = new.replace(b"contract.features", b"training.features")
    assert "training.features SpecFeatures" in _globals(old)
    assert not any(name.startswith("contract.") for name in _globals(old))

    loaded = pickle.loads(old)
    assert type(loaded.named_steps["preprocess"].named_steps["features"]) is SpecFeatures
    rows = heart.features.head(50)
    assert np.array_equal(loaded.predict_proba(rows), model.predict_proba(rows))

    # Without the alias the old pickle cannot load: the alias is what this test proves.
    monkeypatch.setitem(sys.modules, "training.features", None)
    with pytest.raises(ImportError, match=r"training\.features"):
        pickle.loads(old)


def test_training_spec_is_an_alias_of_contract_spec() -> None:
    import contract.spec
    import training.spec

    assert training.spec.DatasetSpec is contract.spec.DatasetSpec
    assert training.spec.load_dataset_spec is contract.spec.load_dataset_spec
    assert set(training.spec.__all__) <= set(dir(contract.spec))
