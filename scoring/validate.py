"""The service's record validation, vectorised over a chunk of file rows.

The service validates each JSON record with the Pydantic model serving/schema.py builds
from the spec. A file row is first read as a record the way training reads data: CSV text
becomes a number where it is one, a category matches in any spelling (3, 3.0, "3"), a
number column's 3.0 counts as the integer 3 (a column with nulls holds floats), and a
missing value is an omitted field. `row_record` is that reading for one row; `check` then
applies the spec's rules to whole columns at once and names each broken rule as Pydantic
does (tests/scoring/test_validate.py holds both to the same verdicts on fuzzed rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contract.spec import DatasetSpec, FeatureSpec, canonical_value

# A decimal number as text; arrow parses exactly these (and spellings of inf and nan, which
# are not numbers here: JSON has none either).
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
NO_STRING = pa.scalar(None, pa.string())


@dataclass(frozen=True)
class Column:
    """One feature column read as record values."""

    null: np.ndarray  # missing: the field is omitted from the record
    bad_type: np.ndarray  # a value of the wrong kind (text or a bool for a number, ...)
    numbers: np.ndarray | None = None  # numeric/integer features: float64, NaN where absent
    labels: np.ndarray | None = None  # categorical/binary: the spec's spelling, None if absent


def _as_arrow(values: Any) -> pa.Array | None:
    """The column as one arrow array, or None for a column of mixed Python objects."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _text(array: pa.Array, na_values: list[str]) -> pa.Array:
    """Stripped text with the empty string and the source's NA markers ("?") as null."""
    text = pc.utf8_trim_whitespace(array.cast(pa.string()))
    absent = pc.is_in(text, value_set=pa.array(["", *na_values], pa.string()))
    return pc.if_else(absent, NO_STRING, text)


def _null_mask(array: pa.Array) -> np.ndarray:
    return array.is_null(nan_is_null=pa.types.is_floating(array.type)).to_numpy(
        zero_copy_only=False)


def _numbers(array: pa.Array, na_values: list[str]) -> Column:
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = array.cast(pa.float64()).to_numpy(zero_copy_only=False)
        null = np.isnan(numbers)  # NaN in a number column is a missing value, as in pandas
        return Column(null=null, bad_type=np.zeros(len(array), bool), numbers=numbers)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = _text(array, na_values)
        null = text.is_null().to_numpy(zero_copy_only=False)
        try:  # the common case, a clean column, at arrow's speed
            parsed = pc.cast(text, pa.float64())
            numbers = parsed.to_numpy(zero_copy_only=False)
            if np.isfinite(numbers[~null]).all():
                return Column(null=null, bad_type=np.zeros(len(array), bool), numbers=numbers)
        except pa.ArrowInvalid:
            pass
        number = pc.fill_null(pc.match_substring_regex(text, NUMBER), False)
        numbers = pc.cast(pc.if_else(number, text, NO_STRING), pa.float64())
        numbers = numbers.to_numpy(zero_copy_only=False)
        return Column(null=null, bad_type=~null & ~number.to_numpy(zero_copy_only=False),
                      numbers=numbers)
    # bools and anything else: never a number
    null = array.is_null().to_numpy(zero_copy_only=False)
    return Column(null=null, bad_type=~null, numbers=np.full(len(array), np.nan))


def _labels(feature: FeatureSpec, array: pa.Array, na_values: list[str]) -> Column:
    """Distinct values are matched once each: a chunk has few distinct categories."""
    choices = list(feature.choices or [])
    allowed = feature.allowed or []
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = _text(array, na_values)
    encoded = array.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    # per distinct value: the index of its choice, -1 not allowed, -2 missing
    lookup = []
    for value in encoded.dictionary.to_pylist():
        key = None if isinstance(value, bool) else canonical_value(value)
        if isinstance(value, bool):
            lookup.append(-1)  # the service refuses true/false for 0/1
        elif key is None:
            lookup.append(-2)
        else:
            lookup.append(allowed.index(key) if key in allowed else -1)
    found = np.append(np.asarray(lookup, dtype=np.int64), -2)[codes]  # code -1: null
    spelled = np.array([*choices, None, None], dtype=object)  # -1 and -2 index the Nones
    return Column(null=found == -2, bad_type=found == -1, labels=spelled[found])


def _read_column(feature: FeatureSpec, array: pa.Array, na_values: list[str]) -> Column:
    if feature.is_categorical:
        return _labels(feature, array, na_values)
    return _numbers(array, na_values)


def read_column(feature: FeatureSpec, values: Any, na_values: list[str]) -> Column:
    """A feature's values (arrow, pandas or a list) read as record values."""
    array = _as_arrow(values)
    if array is not None:
        return _read_column(feature, array, na_values)
    # Mixed Python objects (a pandas object column): each value on its own, the same way.
    parts = [_read_column(feature, pa.array([v], from_pandas=True), na_values) for v in values]
    join = (lambda name: None if getattr(parts[0], name) is None  # noqa: E731
            else np.concatenate([getattr(p, name) for p in parts]))
    return Column(null=join("null"), bad_type=join("bad_type"), numbers=join("numbers"),
                  labels=join("labels"))


def rule_broken(feature: FeatureSpec, column: Column) -> np.ndarray:
    """Per row, the Pydantic error type the service reports for this field, or ''."""
    rules = np.full(len(column.null), "", dtype=object)
    if feature.is_categorical:
        rules[column.bad_type] = "literal_error"
    else:
        numbers = column.numbers
        present = ~column.null & ~column.bad_type
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(numbers)
            if feature.min is not None:
                rules[present & finite & (numbers < feature.min)] = "greater_than_equal"
            if feature.max is not None:
                rules[present & finite & (numbers > feature.max)] = "less_than_equal"
            if feature.type == "integer":  # strict int: a fraction or inf is the wrong type
                rules[present & (~finite | (numbers != np.floor(numbers)))] = "int_type"
                rules[column.bad_type] = "int_type"
            else:
                rules[present & ~finite] = "finite_number"
                rules[column.bad_type] = "float_type"
    if not feature.missing:
        rules[column.null] = "missing"
    return rules


@dataclass(frozen=True)
class Checked:
    """A chunk read and checked: the model's input frame (every row), which rows are valid,
    and the broken rules (row position, field, rule)."""

    frame: pd.DataFrame
    valid: np.ndarray
    problems: pd.DataFrame


def check(spec: DatasetSpec, chunk: pa.Table | pd.DataFrame) -> Checked:
    na_values = spec.source.na_values
    rows = chunk.num_rows if isinstance(chunk, pa.Table) else len(chunk)
    columns: dict[str, np.ndarray] = {}
    valid = np.ones(rows, dtype=bool)
    found: list[pd.DataFrame] = []
    for feature in spec.features:
        column = read_column(feature, chunk[feature.name], na_values)
        # The frame the service builds from records: numbers as floats, categories as the
        # spec spells them (contract/features.py types both the same way afterwards).
        columns[feature.name] = column.labels if column.numbers is None else column.numbers
        rules = rule_broken(feature, column)
        bad = rules != ""
        if bad.any():
            valid &= ~bad
            found.append(pd.DataFrame({"row": np.flatnonzero(bad), "field": feature.name,
                                       "rule": rules[bad].astype(str)}))
    problems = (pd.concat(found, ignore_index=True).sort_values(["row", "field"], kind="stable")
                if found else pd.DataFrame({"row": np.array([], np.int64),
                                            "field": pd.Series([], dtype=str),
                                            "rule": pd.Series([], dtype=str)}))
    return Checked(frame=pd.DataFrame(columns), valid=valid,
                   problems=problems.reset_index(drop=True))


def row_record(spec: DatasetSpec, row: dict[str, Any]) -> dict[str, Any]:
    """One file row as the JSON record a client would send: what the service would be asked.

    The reference for `check` (too slow for millions of rows, exact for one)."""
    record: dict[str, Any] = {}
    for feature in spec.features:
        value = row.get(feature.name)
        column = read_column(feature, [value], spec.source.na_values)
        if column.null[0]:
            continue  # omitted
        if column.bad_type[0]:
            record[feature.name] = value.item() if isinstance(value, np.generic) else value
        elif feature.is_categorical:
            record[feature.name] = column.labels[0]  # type: ignore[index]
        else:
            number = float(column.numbers[0])  # type: ignore[index]
            integral = feature.type == "integer" and np.isfinite(number) and number.is_integer()
            record[feature.name] = int(number) if integral else number
    return record


RULE_TEXT = {
    "missing": "missing, and the spec says it may not be",
    "float_type": "not a number",
    "int_type": "not an integer",
    "finite_number": "not a finite number",
    "greater_than_equal": "below the minimum {min:g}",
    "less_than_equal": "above the maximum {max:g}",
    "literal_error": "not one of the allowed values {choices}",
}


def describe(feature: FeatureSpec, rule: str) -> str:
    """The rule in words, with the spec's bound or allowed values (never the bad value:
    rejected values stay out of reports, as they stay out of the service's logs)."""
    return RULE_TEXT[rule].format(min=feature.min or 0, max=feature.max or 0,
                                  choices=feature.choices)
