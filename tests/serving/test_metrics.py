"""observe_many must leave a histogram exactly as observing each value would."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from serving.metrics import observe_many

BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# On the bounds, between them, below the first, above the last finite one, repeated.
VALUES = [0.5, 0.50000001, 0.6, 0.65, 0.99, 1.0, 1.5, -2.0, 0.7, 0.7, 0.7, 0.3]


def _exposition(fill) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("h", "test", ["model"], buckets=BUCKETS, registry=registry)
    fill(histogram.labels(model="m"))
    return generate_latest(registry)


def _samples(text: bytes) -> dict[str, float]:
    return {name: float(value) for name, value in (
        line.decode().rsplit(" ", 1) for line in text.splitlines()
        if line and not line.startswith(b"#") and b"_created" not in line)}


@pytest.mark.parametrize("values", [VALUES, VALUES[:1], VALUES[:5], [],
                                    list(np.linspace(0, 2, 101))])
def test_observe_many_matches_observing_one_by_one(values: list[float]) -> None:
    def one_by_one(child) -> None:
        for value in values:
            child.observe(value)

    many = _samples(_exposition(lambda child: observe_many(child, np.array(values))))
    each = _samples(_exposition(one_by_one))
    assert many.keys() == each.keys() and len(many) == len(BUCKETS) + 3  # +Inf, count, sum
    for name, value in each.items():  # the sum in another order: rounding may differ
        assert many[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_observe_many_falls_back_to_observe_without_bucket_fields() -> None:
    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    plain = Plain()
    observe_many(plain, np.array([[0.25], [0.75]]))
    assert plain.seen == [0.25, 0.75]
