"""Data set specs: the single source of truth for a data set's schema.

Kept light (pydantic and yaml only): the service imports it to build request models, and
the pickled pipeline's transformers are configured from it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from contract.base import StrictModel

Task = Literal["binary", "multiclass", "regression"]
FeatureType = Literal["numeric", "integer", "categorical", "binary"]

SPEC_DIR = Path(__file__).resolve().parent.parent / "configs" / "datasets"

# Selection metrics per task, and whether higher is better.
SELECTION_METRICS: dict[Task, dict[str, bool]] = {
    "binary": {"roc_auc": True, "pr_auc": True, "accuracy": True, "f1": True, "log_loss": False},
    "multiclass": {"accuracy": True, "f1_macro": True, "roc_auc_ovr": True},
    "regression": {"rmse": False, "mae": False, "r2": True},
}


def canonical_value(value: Any) -> str | None:
    """One spelling per category: 3, 3.0 and "3" are the same category; NaN is missing."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, bool):
        return str(int(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and "e" not in text.lower():
        return str(int(number))
    return text


class FeatureSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: FeatureType
    description: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    values: list[str | int] | None = Field(
        default=None, description="allowed values (categorical: required; binary: default 0/1)"
    )
    missing: bool = Field(default=False, description="whether the value may be missing")

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        if self.type == "categorical" and not self.values:
            raise ValueError(f"categorical feature '{self.name}' needs 'values'")
        if self.type in ("categorical",) and (self.min is not None or self.max is not None):
            raise ValueError(f"categorical feature '{self.name}' cannot have min/max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature '{self.name}': min {self.min} > max {self.max}")
        return self

    @property
    def is_categorical(self) -> bool:
        """Categorical or binary: one of a fixed set of values (`choices`), not a quantity."""
        return self.type in ("categorical", "binary")

    @property
    def is_numeric(self) -> bool:
        """Numeric or integer: a quantity, optionally within min/max."""
        return self.type in ("numeric", "integer")

    @property
    def choices(self) -> list[str | int] | None:
        """The allowed values as the spec writes them (binary: 0 and 1 unless given), or None
        for a numeric feature."""
        if self.type == "binary":
            return self.values or [0, 1]
        if self.type == "categorical":
            return self.values
        return None

    @property
    def allowed(self) -> list[str] | None:
        """Canonical spellings of the allowed values, or None if any value in range is."""
        if self.choices is None:
            return None
        return [canonical_value(v) for v in self.choices]  # type: ignore[misc]


class EngineeredFeature(StrictModel):
    """A feature computed inside the pipeline from raw features."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: Literal["ratio", "product", "difference", "bins"]
    inputs: list[str] = Field(min_length=1, max_length=2)
    description: str
    edges: list[float] | None = Field(default=None, description="bin edges (kind: bins)")
    labels: list[str] | None = Field(default=None, description="bin labels (kind: bins)")

    @model_validator(mode="after")
    def _check(self) -> EngineeredFeature:
        if self.kind == "bins":
            if len(self.inputs) != 1 or not self.edges or len(self.edges) < 2:
                raise ValueError(f"'{self.name}': bins need one input and at least two edges")
            if self.edges != sorted(self.edges):
                raise ValueError(f"'{self.name}': bin edges must increase")
            if self.labels is not None and len(self.labels) != len(self.edges) - 1:
                raise ValueError(f"'{self.name}': need {len(self.edges) - 1} labels")
        elif len(self.inputs) != 2:
            raise ValueError(f"'{self.name}': {self.kind} needs exactly two inputs")
        return self

    @property
    def output_type(self) -> Literal["numeric", "categorical"]:
        return "categorical" if self.kind == "bins" else "numeric"

    @property
    def bin_labels(self) -> list[str]:
        edges = self.edges or []
        return self.labels or [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]


class TargetSpec(StrictModel):
    name: str
    task: Task
    description: str
    unit: str | None = None
    classes: list[str] | None = Field(default=None, description="class labels (classification)")
    positive_class: str | None = Field(default=None, description="binary: the positive label")
    mapping: dict[str, str] | None = Field(
        default=None, description="raw target value -> class label (classification)"
    )

    @model_validator(mode="after")
    def _check(self) -> TargetSpec:
        if not self.is_classifier:
            if self.classes or self.positive_class or self.mapping:
                raise ValueError("a regression target has no classes, positive_class or mapping")
            return self
        if not self.classes or len(set(self.classes)) < 2:
            raise ValueError("a classification target needs at least two distinct classes")
        if self.task == "binary":
            if len(self.classes) != 2:
                raise ValueError("a binary target needs exactly two classes")
            if self.positive_class not in self.classes:
                raise ValueError(f"positive_class must be one of {self.classes}")
        elif self.positive_class is not None:
            raise ValueError("positive_class is for binary targets only")
        if self.mapping:
            unknown = sorted(set(self.mapping.values()) - set(self.classes))
            if unknown:
                raise ValueError(f"mapping names labels that are not classes: {unknown}")
        return self

    @property
    def is_classifier(self) -> bool:
        """Binary or multiclass: the model predicts a class (and has predict_proba)."""
        return self.task != "regression"

    def label_of(self, raw: Any) -> str | None:
        """The class label for a raw target value, or None if the value is invalid."""
        key = canonical_value(raw)
        if key is None:
            return None
        if self.mapping:
            return self.mapping.get(key)
        return key if key in (self.classes or []) else None


class SourceSpec(StrictModel):
    kind: Literal["sklearn", "csv"]
    loader: str | None = Field(default=None, description="sklearn.datasets function name")
    loader_kwargs: dict[str, Any] = Field(default_factory=dict)
    url: str | None = None
    columns: list[str] | None = Field(default=None, description="column names of a headerless CSV")
    na_values: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(
        default_factory=dict, description="source column name -> spec name, applied on read"
    )
    citation: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        if self.kind == "sklearn" and not self.loader:
            raise ValueError("an sklearn source needs 'loader'")
        return self


class DatasetSpec(StrictModel):
    name: str
    model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    source: SourceSpec
    target: TargetSpec
    features: list[FeatureSpec] = Field(min_length=1)
    engineered_features: list[EngineeredFeature] = Field(default_factory=list)
    selection_metric: str

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        names = [f.name for f in self.features] + [e.name for e in self.engineered_features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        if self.target.name in names:
            raise ValueError(f"target '{self.target.name}' is also declared as a feature")
        by_name = {f.name: f for f in self.features}
        for eng in self.engineered_features:
            for name in eng.inputs:
                if name not in by_name:
                    raise ValueError(f"engineered feature '{eng.name}' uses unknown '{name}'")
                if by_name[name].type == "categorical":
                    raise ValueError(f"engineered feature '{eng.name}' uses categorical '{name}'")
        metrics = SELECTION_METRICS[self.target.task]
        if self.selection_metric not in metrics:
            raise ValueError(
                f"selection_metric '{self.selection_metric}' is not one of {sorted(metrics)} "
                f"for task '{self.target.task}'"
            )
        return self

    @property
    def task(self) -> Task:
        return self.target.task

    @property
    def is_classifier(self) -> bool:
        return self.target.is_classifier

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def higher_is_better(self) -> bool:
        return SELECTION_METRICS[self.task][self.selection_metric]


class SpecError(ValueError):
    """A spec file that cannot be read or does not validate."""


def available_datasets(spec_dir: Path = SPEC_DIR) -> list[str]:
    return sorted(p.stem for p in spec_dir.glob("*.yaml"))


def load_dataset_spec(name_or_path: str | Path, spec_dir: Path = SPEC_DIR) -> DatasetSpec:
    """Load a spec by preset name (configs/datasets/NAME.yaml) or by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = spec_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        raise SpecError(
            f"no data set spec '{name_or_path}' (looked for {path}); "
            f"known presets: {', '.join(available_datasets(spec_dir))}"
        )
    try:
        raw = yaml.safe_load(path.read_text())
        return DatasetSpec.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise SpecError(f"{path}: invalid data set spec:\n{exc}") from exc
