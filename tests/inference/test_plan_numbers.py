"""The compiled plan makes engineered numbers a kind at a time (inference/plan.py); each
value must be exactly what contract.features._engineer, the pipeline's own step, makes."""

from __future__ import annotations

import numpy as np

from contract.features import _engineer
from inference.plan import FeaturePlan

ENGINEERED = [
    {"name": "a_per_b", "kind": "ratio", "inputs": ["a", "b"]},
    {"name": "b_times_c", "kind": "product", "inputs": ["b", "c"]},
    {"name": "a_minus_c", "kind": "difference", "inputs": ["a", "c"]},
    {"name": "c_per_a", "kind": "ratio", "inputs": ["c", "a"]},
]


def test_engineered_numbers_equal_the_pipelines_bit_for_bit() -> None:
    plan = FeaturePlan(numeric=["a", "b", "c"], categorical=[], engineered=ENGINEERED,
                       blocks=[])
    rng = np.random.default_rng(3)
    raw = rng.normal(0, 1e3, size=(200, 3))
    # Zero and subnormal denominators, overflowing products, missing values, huge values.
    raw[:20, 1] = 0.0
    raw[20:30, 1] = 5e-324
    raw[30:40, 1:] = 1e200
    raw[40:50] = np.nan
    raw[50:60, 0] = -0.0
    columns = {name: raw[:, i] for i, name in enumerate(plan.numeric)}
    expected = np.column_stack([_engineer(columns, eng) for eng in ENGINEERED])
    made = plan._numbers(raw)
    assert made.shape == expected.shape
    assert np.array_equal(made, expected, equal_nan=True)
    assert np.array_equal(np.signbit(made), np.signbit(expected))
    assert np.isnan(made).any() and not np.isinf(made).any()
    for row, numbers in zip(raw, expected, strict=True):  # a lone row: Python floats
        one = np.array(plan._numbers_of_one(row.tolist()))
        assert np.array_equal(one, np.concatenate([row, numbers]), equal_nan=True)
        assert np.array_equal(np.signbit(one), np.signbit(np.concatenate([row, numbers])))
