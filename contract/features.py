"""The first step of every pipeline: raw records in, typed and engineered columns out.

This class is pickled inside the registered pipeline, so the service unpickles it too:
keep this module light (no MLflow, no plotting).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from contract.spec import DatasetSpec, canonical_value


class SpecFeatures(TransformerMixin, BaseEstimator):
    """Selects the spec's raw features (in spec order), fixes their types and adds engineered ones.

    Column order and spelling of categories (3, 3.0, "3") do not matter to the pipeline.
    """

    def __init__(
        self,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        engineered: tuple[dict[str, Any], ...] = (),
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.engineered = engineered

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> SpecFeatures:
        return cls(
            numeric=tuple(f.name for f in spec.features if f.type != "categorical"),
            categorical=tuple(f.name for f in spec.features if f.type == "categorical"),
            engineered=tuple(
                e.model_dump() | {"labels": e.bin_labels} for e in spec.engineered_features
            ),
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> SpecFeatures:
        self._check_columns(X)
        self.n_features_in_ = len(self.numeric) + len(self.categorical)
        return self

    def _check_columns(self, X: pd.DataFrame) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("SpecFeatures expects a pandas DataFrame of raw records")
        missing = [c for c in (*self.numeric, *self.categorical) if c not in X.columns]
        if missing:
            raise KeyError(f"input is missing feature column(s): {missing}")

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_columns(X)
        # Columns are gathered in a dict and framed once: inserting them one by one into a
        # DataFrame costs more than the model itself on small batches.
        columns: dict[str, Any] = {}
        numeric = list(self.numeric)
        try:
            values = X[numeric].to_numpy(dtype="float64", na_value=np.nan)
            columns.update({name: values[:, i] for i, name in enumerate(numeric)})
        except (TypeError, ValueError):
            for name in numeric:
                columns[name] = pd.to_numeric(X[name], errors="coerce").to_numpy("float64")
        for name in self.categorical:
            columns[name] = np.array(
                [np.nan if v is None else v for v in map(canonical_value, X[name])], dtype=object
            )
        for eng in self.engineered:
            columns[eng["name"]] = _engineer(columns, eng)
        return pd.DataFrame(columns, index=X.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [*self.numeric, *self.categorical, *(e["name"] for e in self.engineered)]
        return np.asarray(names, dtype=object)


LARGEST = 1e30  # well inside float32 (3.4e38), even after scaling


def _engineer(columns: dict[str, np.ndarray], eng: dict[str, Any]) -> np.ndarray:
    first = columns[eng["inputs"][0]]
    if eng["kind"] == "bins":
        binned = pd.cut(first, bins=eng["edges"], labels=eng["labels"], include_lowest=True)
        return np.array([np.nan if pd.isna(v) else v for v in binned], dtype=object)
    second = columns[eng["inputs"][1]]
    # Every numeric result is finite or missing: a zero or subnormal denominator (1 / 5e-324
    # is inf) or an overflowing product would otherwise reach scikit-learn as infinity,
    # which it refuses ("Input X contains infinity"). Tree models cast to float32, so a
    # finite 1e200 would become infinity there: beyond LARGEST counts as missing too.
    # Missing values are imputed.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if eng["kind"] == "ratio":
            result = first / np.where(second != 0, second, np.nan)
        elif eng["kind"] == "product":
            result = first * second
        else:
            result = first - second
    return np.where(np.abs(result) < LARGEST, result, np.nan)  # NaN fails the test too
