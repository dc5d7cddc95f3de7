"""Load a data set as its spec describes, and refuse data that does not match the spec."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from contract.spec import DatasetSpec, FeatureSpec, canonical_value
from training.redact import redact_url

MAX_EXAMPLES = 5


class DataValidationError(ValueError):
    """Data that does not match its spec; the message lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source}: data does not match the data set spec ({len(problems)} problem(s)):\n"
            f"{lines}\nFix the data or the spec under configs/datasets/; nothing was trained."
        )


@dataclass(frozen=True)
class Dataset:
    """Validated raw features (spec columns, spec order) and target labels or values."""

    spec: DatasetSpec
    features: pd.DataFrame
    target: pd.Series
    source: str

    @property
    def digest(self) -> str:
        """Content hash of the validated data: the same data gives the same digest."""
        frame = self.features.assign(**{self.spec.target.name: self.target})
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def read_raw(spec: DatasetSpec, data: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """Read the data set's raw table from `data` (a path or URL) or from the spec's source."""
    source = spec.source
    if data is None and source.kind == "sklearn":
        loader = getattr(importlib.import_module("sklearn.datasets"), source.loader or "")
        bunch = loader(as_frame=True, **source.loader_kwargs)
        frame = bunch.frame.rename(columns=source.rename)
        frame.columns = [str(c).strip().replace(" ", "_") for c in frame.columns]
        return frame, f"sklearn.datasets.{source.loader}"
    location = str(data) if data is not None else source.url
    shown = redact_url(location) if location else ""  # what messages and MLflow may see
    if location is None:
        raise ValueError(f"data set '{spec.name}' has no URL; pass --data PATH_OR_URL")
    is_url = "://" in location
    if not is_url and not Path(location).is_file():
        raise FileNotFoundError(f"{shown}: no such file (pass --data with a CSV file or URL)")
    try:
        frame = pd.read_csv(
            location,
            header=None if source.columns else "infer",
            names=source.columns,
            na_values=source.na_values or None,
            skipinitialspace=True,
        )
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        hint = " (no network? download it and pass --data PATH)" if is_url else ""
        raise DataValidationError(
            shown, [f"cannot be read as CSV: {redact_url(str(exc))}{hint}"]) from exc
    if problem := _layout_problem(frame, source.columns):
        raise DataValidationError(shown, [problem])
    return frame.rename(columns=source.rename), shown


OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def _layout_problem(frame: pd.DataFrame, columns: list[str] | None) -> str | None:
    """A wrong delimiter or an unexpected header row, said plainly (not as 20 column errors)."""
    if len(frame) == 0:
        return "the file has no data rows"
    if frame.shape[1] == 1 or frame.iloc[:, 1:].isna().all().all():
        first = frame.iloc[:, 0].astype(str).head(20)
        header = str(frame.columns[0])
        for delimiter, name in OTHER_DELIMITERS.items():
            if first.str.contains(delimiter, regex=False).all() or delimiter in header:
                return (f"every row is a single field: the file seems to be separated by "
                        f"{name}; the data set expects comma-separated values")
    if columns:
        row = [str(v).strip().lower() for v in frame.iloc[0].tolist()]
        if sum(v == c.lower() for v, c in zip(row, columns, strict=False)) >= len(columns) / 2:
            return ("the first row is a header row "
                    f"({', '.join(row[:5])}, ...); files of this data set have none "
                    f"(columns in order: {', '.join(columns)}): remove that row")
    return None


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _examples(values: pd.Series) -> str:
    return "e.g. " + ", ".join(_show(v) for v in values.head(MAX_EXAMPLES).tolist())


def _bound(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"


def _check_feature(feature: FeatureSpec, column: pd.Series) -> tuple[pd.Series, list[str]]:
    """Typed column and the problems found in it."""
    problems: list[str] = []
    name = feature.name
    present = column.notna()
    if feature.type == "categorical":
        typed = column.map(canonical_value)
    else:
        typed = pd.to_numeric(column, errors="coerce")
        wrong = present & typed.isna()
        if wrong.any():
            problems.append(
                f"column '{name}': {int(wrong.sum())} value(s) are not numbers "
                f"(type {feature.type}), {_examples(column[wrong])}"
            )
        typed = typed.astype("float64")
        if feature.type == "integer":
            fractional = typed.notna() & (typed != np.floor(typed))
            if fractional.any():
                problems.append(
                    f"column '{name}': {int(fractional.sum())} value(s) are not integers, "
                    f"{_examples(typed[fractional])}"
                )
        low = typed.notna() & (typed < feature.min) if feature.min is not None else None
        high = typed.notna() & (typed > feature.max) if feature.max is not None else None
        bounds = f"[{_bound(feature.min, '-inf')}, {_bound(feature.max, 'inf')}]"
        for mask in (m for m in (low, high) if m is not None):
            if mask.any():
                problems.append(
                    f"column '{name}': {int(mask.sum())} value(s) outside the valid range "
                    f"{bounds}, {_examples(typed[mask])}"
                )
    allowed = feature.allowed
    if allowed is not None:
        canonical = typed.map(canonical_value)
        unknown = canonical.notna() & ~canonical.isin(allowed)
        if unknown.any():
            problems.append(
                f"column '{name}': {int(unknown.sum())} value(s) are not allowed categories "
                f"{allowed}, {_examples(canonical[unknown])}"
            )
    missing = ~present
    if not feature.missing and missing.any():
        problems.append(
            f"column '{name}': {int(missing.sum())} missing value(s) but the spec says "
            "it may not be missing"
        )
    if missing.all():
        problems.append(f"column '{name}': every value is missing")
    return typed, problems


def validate_frame(spec: DatasetSpec, raw: pd.DataFrame, source: str) -> Dataset:
    """Check a raw table against the spec; raise DataValidationError listing every problem."""
    problems: list[str] = []
    expected = [*spec.feature_names, spec.target.name]
    absent = [c for c in expected if c not in raw.columns]
    if absent:
        found = ", ".join(map(str, raw.columns[:12]))
        problems.append(f"missing column(s) {absent}; the file has: {found}")
        raise DataValidationError(source, problems)

    features = pd.DataFrame(index=raw.index)
    for feature in spec.features:
        features[feature.name], found = _check_feature(feature, raw[feature.name])
        problems.extend(found)

    target_raw = raw[spec.target.name]
    if not spec.is_classifier:
        target = pd.to_numeric(target_raw, errors="coerce").astype("float64")
        bad = target.isna()
    else:
        target = target_raw.map(spec.target.label_of)
        bad = target.isna()
    if bad.any():
        rule = "numbers" if not spec.is_classifier else (
            f"values mapped to classes {spec.target.classes}" if spec.target.mapping
            else f"one of the classes {spec.target.classes}"
        )
        problems.append(
            f"target '{spec.target.name}': {int(bad.sum())} invalid value(s) (must be {rule}), "
            f"{_examples(target_raw[bad].astype(str))}"
        )
    if problems:
        raise DataValidationError(source, problems)
    return Dataset(
        spec=spec,
        features=features.reset_index(drop=True),
        target=target.reset_index(drop=True).rename(spec.target.name),
        source=source,
    )


def load_dataset(spec: DatasetSpec, data: str | Path | None = None) -> Dataset:
    raw, source = read_raw(spec, data)
    return validate_frame(spec, raw, source)
