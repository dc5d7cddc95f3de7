"""Candidate pipelines: spec-driven preprocessing and an estimator in one scikit-learn Pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contract.features import SpecFeatures
from contract.spec import DatasetSpec
from training.config import CandidateConfig, TrainingConfig, estimator_class


@dataclass(frozen=True)
class Candidate:
    name: str
    pipeline: Pipeline
    param_grid: dict[str, list[Any]]

    @property
    def n_settings(self) -> int:
        count = 1
        for values in self.param_grid.values():
            count *= len(values)
        return count


def build_preprocessor(spec: DatasetSpec) -> Pipeline:
    """Raw records -> model matrix: typed/engineered columns, imputation, scaling, one-hot."""
    numeric = [f.name for f in spec.features if f.is_numeric]
    binary = [f.name for f in spec.features if f.type == "binary"]
    categorical = [f.name for f in spec.features if f.type == "categorical"]
    for eng in spec.engineered_features:
        (categorical if eng.output_type == "categorical" else numeric).append(eng.name)
    transformers = []
    if numeric:
        transformers.append((
            "numeric",
            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
            numeric,
        ))
    if binary:
        transformers.append(("binary", SimpleImputer(strategy="most_frequent"), binary))
    if categorical:
        transformers.append((
            "categorical",
            Pipeline([
                ("impute", SimpleImputer(strategy="most_frequent")),
                # Unknown categories at serving time become all-zero rows, not errors.
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]),
            categorical,
        ))
    return Pipeline([
        ("features", SpecFeatures.from_spec(spec)),
        ("columns", ColumnTransformer(transformers, verbose_feature_names_out=False)),
    ])


def build_candidate(spec: DatasetSpec, candidate: CandidateConfig, seed: int) -> Candidate:
    cls = estimator_class(candidate.estimator)
    params = dict(candidate.params)
    if "random_state" in cls().get_params():
        params.setdefault("random_state", seed)
    pipeline = Pipeline([("preprocess", build_preprocessor(spec)), ("model", cls(**params))])
    grid = {f"model__{key}": list(values) for key, values in candidate.search.items()}
    return Candidate(name=candidate.name, pipeline=pipeline, param_grid=grid)


def build_candidates(spec: DatasetSpec, config: TrainingConfig) -> list[Candidate]:
    return [build_candidate(spec, c, config.seed) for c in config.candidates[spec.task]]
