from pathlib import Path

import pytest
import yaml

from contract.spec import (
    SPEC_DIR,
    DatasetSpec,
    SpecError,
    TargetSpec,
    available_datasets,
    canonical_value,
    load_dataset_spec,
)

PRESETS = {
    "breast_cancer": ("breast-cancer-classifier", "binary"),
    "iris": ("iris-classifier", "multiclass"),
    "diabetes": ("diabetes-regressor", "regression"),
    "heart": ("heart-disease-classifier", "binary"),
    "california_housing": ("california-housing-regressor", "regression"),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_load_with_their_model_names(name: str) -> None:
    spec = load_dataset_spec(name)
    assert (spec.model_name, spec.task) == PRESETS[name]
    assert all(f.description for f in spec.features)


def test_every_spec_file_is_a_known_preset() -> None:
    assert set(available_datasets()) == set(PRESETS)


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(SpecError, match=r"known presets: breast_cancer, california_housing, "
                                        r"diabetes, heart, iris$"):
        load_dataset_spec("no_such_data")


def test_a_spec_file_may_end_in_yml(tmp_path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text((SPEC_DIR / "iris.yaml").read_text())
    assert load_dataset_spec(path) == load_dataset_spec("iris")


def test_labels_without_a_mapping_are_the_classes_themselves() -> None:
    target = TargetSpec(name="y", task="multiclass", description="d", classes=["a", "b", "3"])
    assert [target.label_of(v) for v in ("a", " b ", 3.0, "c", None)] == ["a", "b", "3",
                                                                         None, None]


def _spec_dict() -> dict:
    return yaml.safe_load((SPEC_DIR / "heart.yaml").read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(typo_key=1), "typo_key"),
        (lambda d: d["features"][2].pop("values"), "needs 'values'"),
        (lambda d: d.update(selection_metric="r2"), "selection_metric 'r2'"),
        (lambda d: d["target"].update(positive_class="maybe"), "positive_class"),
        (lambda d: d["engineered_features"][0].update(inputs=["chol", "nope"]), "unknown 'nope'"),
        (lambda d: d["features"].append(dict(d["features"][0])), "duplicate feature names"),
        (lambda d: d["engineered_features"][2].update(edges=[60, 10]), "must increase"),
    ],
)
def test_invalid_specs_are_refused_with_the_file_and_rule(tmp_path, mutate, message) -> None:
    raw = _spec_dict()
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(SpecError, match=message) as info:
        load_dataset_spec(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, "3"), (3.0, "3"), ("3", "3"), (" 3.0 ", "3"), ("INLAND", "INLAND"), (2.5, "2.5"),
     (float("nan"), None), (None, None), (True, "1"),
     ("1e3", "1e3"), ("2E1", "2E1")],  # written with an exponent: a code, kept as written
)
def test_canonical_value_spells_each_category_once(value, expected) -> None:
    assert canonical_value(value) == expected


def test_spec_round_trips_through_json() -> None:
    # The registered model carries the spec as metadata; it must load back identically.
    spec = load_dataset_spec("california_housing")
    assert DatasetSpec.model_validate(spec.model_dump(mode="json")) == spec
