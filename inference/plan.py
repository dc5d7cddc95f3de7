"""The fitted preprocessing of a pipeline as plain arrays: validated records in, model matrix out.

`FeaturePlan.from_pipeline` reads the fitted `SpecFeatures` + `ColumnTransformer` of a
pipeline (training/pipelines.py) and keeps only what scoring needs: medians, means, scales,
modes and one-hot categories. `matrix(records)` then builds the model's input straight from
the records with NumPy, without a DataFrame or scikit-learn's per-call checks (about 4 ms a
call for a DataFrame and a ColumnTransformer, whatever the rows). Anything the plan does not
reproduce exactly raises `NotCompilable`; training also checks parity on the hold-out rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contract.features import LARGEST, SpecFeatures, _engineer
from contract.spec import canonical_value


class NotCompilable(ValueError):
    """The pipeline has a step (or a setting) the compiled path does not reproduce."""


@dataclass
class Block:
    """One ColumnTransformer entry: columns in, a chain of steps, dense float64 out."""

    columns: list[str]
    categorical: bool
    fill: list[Any] | None = None  # SimpleImputer statistics
    mean: list[float] | None = None  # StandardScaler
    scale: list[float] | None = None
    categories: list[list[Any]] | None = None  # OneHotEncoder
    _index: list[dict[Any, int]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._index = [{c: i for i, c in enumerate(cats)} for cats in self.categories or []]
        self._width = sum(len(c) for c in self.categories or [])
        self._positions: np.ndarray | None = None

    def prepare(self, layout: dict[str, int]) -> None:
        """Fix where a numeric block's columns sit in the plan's numeric table, and its
        statistics as arrays: per call, one fancy index instead of a column per feature."""
        if self.categorical:
            return
        missing = [c for c in self.columns if c not in layout]
        if missing:
            raise NotCompilable(f"numeric columns {missing} are neither raw nor engineered "
                                "numbers")
        self._positions = np.array([layout[c] for c in self.columns], dtype=np.intp)
        self._fill = None if self.fill is None else np.asarray(self.fill, dtype=np.float64)
        self._mean = None if self.mean is None else np.asarray(self.mean, dtype=np.float64)
        self._scale = None if self.scale is None else np.asarray(self.scale, dtype=np.float64)

    def apply(self, table: np.ndarray, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """This block's output; numeric blocks read `table`, categorical ones `columns`."""
        if not self.categorical:
            if self._positions is None:
                raise RuntimeError("Block.prepare was not called (FeaturePlan does it)")
            X = table[:, self._positions]  # a copy: the steps below may work in place
            if self._fill is not None:
                nan = np.isnan(X)
                if nan.any():
                    X = np.where(nan, self._fill, X)
            if self._mean is not None:
                X -= self._mean
            if self._scale is not None:
                X /= self._scale
            return X
        values = [columns[c] for c in self.columns]
        if self.fill is not None:
            values = [[self.fill[j] if _missing(v) else v for v in col]
                      for j, col in enumerate(values)]
        if self.categories is None:
            raise NotCompilable("a categorical block without one-hot encoding")
        out = np.zeros((rows, self._width), dtype=np.float64)
        offset = 0
        for j, col in enumerate(values):
            index = self._index[j]
            for row, value in enumerate(col):
                position = index.get(value)
                if position is not None:  # unknown categories: all-zero, as handle_unknown
                    out[row, offset + position] = 1.0
            offset += len(self.categories[j])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "categorical": self.categorical, "fill": self.fill,
                "mean": self.mean, "scale": self.scale, "categories": self.categories}


class _Columns(dict):
    """Categorical and engineered columns by name; a raw numeric one is sliced from the
    table only when asked for (an engineered feature's input)."""

    def __init__(self, raw: np.ndarray, layout: dict[str, int],
                 columns: dict[str, np.ndarray]) -> None:
        super().__init__(columns)
        self.raw, self.layout = raw, layout

    def __missing__(self, name: str) -> np.ndarray:
        return self.raw[:, self.layout[name]]


def _categories(values: list[Any]) -> np.ndarray:
    # canonical_value: 3, 3.0 and "3" are one category, as SpecFeatures spells them
    return np.array([np.nan if (v := canonical_value(x)) is None else v for x in values],
                    dtype=object)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


@dataclass
class FeaturePlan:
    numeric: list[str]
    categorical: list[str]
    engineered: list[dict[str, Any]]
    blocks: list[Block]

    def __post_init__(self) -> None:
        # The numeric table: raw numeric features, then the engineered numbers, in order.
        names = [*self.numeric,
                 *(e["name"] for e in self.engineered if e["kind"] != "bins")]
        self._layout = {name: i for i, name in enumerate(names)}
        for block in self.blocks:
            block.prepare(self._layout)
        self._count = len(names) - len(self.numeric)
        self._arithmetic = self._arithmetic_groups()

    def _arithmetic_groups(self) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] | None:
        """The engineered numbers by kind: (kind, first inputs' and second inputs' columns
        in the raw table, their places among the engineered numbers); None when an input
        is not a raw numeric feature (then they are made one by one)."""
        raw = {name: i for i, name in enumerate(self.numeric)}
        groups: dict[str, list[tuple[int, int, int]]] = {}
        numbers = [e for e in self.engineered if e["kind"] != "bins"]
        for place, eng in enumerate(numbers):
            inputs = eng["inputs"]
            if len(inputs) != 2 or not all(name in raw for name in inputs):
                return None
            groups.setdefault(eng["kind"], []).append((raw[inputs[0]], raw[inputs[1]], place))
        return [(kind, *(np.array(part, dtype=np.intp) for part in zip(*items, strict=True)))
                for kind, items in groups.items()]  # type: ignore[misc]

    def matrix(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """The model matrix of validated records, exactly as the fitted preprocessing makes it."""
        rows = len(records)
        # None becomes NaN in a float64 array, as the DataFrame path's na_value does.
        raw = np.array([[r.get(n) for n in self.numeric] for r in records], dtype=np.float64)
        columns = {name: _categories([r.get(name) for r in records])
                   for name in self.categorical}
        return self._finish(raw.reshape(rows, len(self.numeric)), columns, rows)

    def frame_matrix(self, frame: Any) -> np.ndarray:
        """The same from a DataFrame of validated rows (batch scoring reads files in frames)."""
        rows = len(frame)
        raw = (frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
               if self.numeric else np.empty((rows, 0)))
        columns = {name: _categories(frame[name].tolist()) for name in self.categorical}
        return self._finish(raw, columns, rows)

    def _finish(self, raw: np.ndarray, categorical: dict[str, np.ndarray],
                rows: int) -> np.ndarray:
        columns = _Columns(raw, self._layout, categorical)
        if self._arithmetic is None:
            numbers = []
            for eng in self.engineered:
                columns[eng["name"]] = value = _engineer(columns, eng)
                if eng["kind"] != "bins":
                    numbers.append(value)
            table = np.column_stack([raw, *numbers]) if numbers else raw
        else:
            for eng in self.engineered:
                if eng["kind"] == "bins":
                    columns[eng["name"]] = _engineer(columns, eng)
            if not self._count:
                table = raw
            elif rows == 1:
                table = np.array([self._numbers_of_one(raw[0].tolist())])
            else:
                table = np.hstack([raw, self._numbers(raw)])
        parts = [block.apply(table, columns, rows) for block in self.blocks]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def _numbers(self, raw: np.ndarray) -> np.ndarray:
        """The engineered numbers, a NumPy call per kind instead of several per feature
        (three ratios of one row took 21 of a one-row call's 60 µs): element by element
        the operations of contract.features._engineer, so the values are the same."""
        out = np.empty((raw.shape[0], self._count))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for kind, first, second, places in self._arithmetic or []:
                a, b = raw[:, first], raw[:, second]
                if kind == "ratio":
                    out[:, places] = a / np.where(b != 0, b, np.nan)
                elif kind == "product":
                    out[:, places] = a * b
                else:
                    out[:, places] = a - b
            return np.where(np.abs(out) < LARGEST, out, np.nan)

    def _numbers_of_one(self, values: list[float]) -> list[float]:
        """One row's raw numbers and then its engineered ones, in Python floats: for a lone
        row NumPy's per-call overhead was most of the work. IEEE double arithmetic either
        way, so the values are the same (tested)."""
        numbers = [0.0] * self._count
        for kind, first, second, places in self._arithmetic or []:
            for i, j, place in zip(first.tolist(), second.tolist(), places.tolist(),
                                   strict=True):
                a, b = values[i], values[j]
                if kind == "ratio":
                    value = a / b if b != 0 else math.nan  # NaN / x is NaN, as in NumPy
                elif kind == "product":
                    value = a * b
                else:
                    value = a - b
                numbers[place] = value if abs(value) < LARGEST else math.nan
        return values + numbers

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical,
                "engineered": self.engineered, "blocks": [b.to_dict() for b in self.blocks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        return cls(numeric=list(data["numeric"]), categorical=list(data["categorical"]),
                   engineered=[dict(e) for e in data["engineered"]],
                   blocks=[Block(**b) for b in data["blocks"]])

    @classmethod
    def from_pipeline(cls, preprocess: Any) -> FeaturePlan:
        """The plan of a fitted Pipeline of SpecFeatures then a ColumnTransformer."""
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        if not isinstance(preprocess, Pipeline) or len(preprocess.steps) != 2:
            raise NotCompilable("preprocessing is not SpecFeatures then a ColumnTransformer")
        features, columns = preprocess.steps[0][1], preprocess.steps[1][1]
        if type(features) is not SpecFeatures or type(columns) is not ColumnTransformer:
            raise NotCompilable("preprocessing is not SpecFeatures then a ColumnTransformer")
        if columns.remainder != "drop" and _remainder_used(columns):
            raise NotCompilable("the ColumnTransformer passes remainder columns through")
        categorical_names = {*features.categorical,
                             *(e["name"] for e in features.engineered
                               if e["kind"] == "bins")}
        blocks = []
        for name, transformer, cols in columns.transformers_:
            if name == "remainder" or transformer == "drop":
                continue
            if isinstance(cols, str) or not all(isinstance(c, str) for c in cols):
                raise NotCompilable(f"block '{name}' selects columns other than by name list")
            categorical = [c in categorical_names for c in cols]
            if any(categorical) and not all(categorical):
                raise NotCompilable(f"block '{name}' mixes numeric and categorical columns")
            steps = transformer.steps if isinstance(transformer, Pipeline) else [
                (name, transformer)]
            blocks.append(_block(list(cols), all(categorical) and bool(cols),
                                 [s for _, s in steps]))
        return cls(numeric=list(features.numeric), categorical=list(features.categorical),
                   engineered=[dict(e) for e in features.engineered], blocks=blocks)


def _remainder_used(columns: Any) -> bool:
    return any(name == "remainder" and len(cols) > 0
               for name, _, cols in columns.transformers_)


def _block(cols: list[str], categorical: bool, steps: list[Any]) -> Block:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    block = Block(columns=cols, categorical=categorical)
    seen = -1  # impute (0), then scale (1) or one-hot (2): the order the plan applies them
    for step in steps:
        kind = type(step)
        if kind is SimpleImputer:
            position = 0
            if step.add_indicator or not _nan_marker(step.missing_values):
                raise NotCompilable("SimpleImputer with indicators or a custom missing marker")
            stats = list(step.statistics_)
            if any(_missing(s) for s in stats):
                raise NotCompilable("SimpleImputer dropped an all-missing column")
            block.fill = [_native(s) if categorical else float(s) for s in stats]
        elif kind is StandardScaler and not categorical:
            position = 1
            block.mean = None if step.mean_ is None else [float(m) for m in step.mean_]
            block.scale = None if step.scale_ is None else [float(s) for s in step.scale_]
        elif kind is OneHotEncoder and categorical:
            position = 2
            if (step.drop is not None or step.handle_unknown != "ignore"
                    or step.min_frequency is not None or step.max_categories is not None
                    or step.sparse_output):
                raise NotCompilable("OneHotEncoder with drop, infrequent categories or "
                                    "sparse output")
            block.categories = [[_native(v) for v in c] for c in step.categories_]
        else:
            raise NotCompilable(f"step {kind.__name__} is not compiled "
                                f"({'categorical' if categorical else 'numeric'} columns)")
        if position <= seen:
            raise NotCompilable("preprocessing steps in an unexpected order")
        seen = position
    block.__post_init__()
    if categorical and block.categories is None:
        raise NotCompilable("categorical columns without one-hot encoding")
    return block


def _native(value: Any) -> Any:
    """numpy scalars as Python values: the plan is stored as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _nan_marker(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
