"""The shadow challenger's queue, agreement and recording, with a stand-in model (fast)."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace
from typing import Any

import numpy as np
from prometheus_client import REGISTRY

from serving.shadow import Shadow


class Model:
    """A regressor that answers `value` for every row; blocks while `gate` is clear."""

    engine, classes = "stub", None

    def __init__(self, value: float) -> None:
        self.value = value
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[int] = []
        self.fail = False

    def predict(self, records: list[dict[str, Any]]) -> np.ndarray:
        self.gate.wait(10)
        self.calls.append(len(records))
        if self.fail:
            raise RuntimeError("challenger broke")
        return np.full(len(records), self.value)


class Answers:
    def answers(self, rows: Any) -> list[dict[str, Any]]:
        return [{"model_version": "v2", "prediction": float(row)} for row in rows]


def shadow(model: Model, max_queue_rows: int = 100) -> tuple[Shadow, dict]:
    name = f"m-{uuid.uuid4().hex[:8]}"  # metrics are process-wide: labels of its own
    spec = SimpleNamespace(is_classifier=False)
    champion = SimpleNamespace(name=name, version="v1", spec=spec, tag=f"{name}:v1")
    challenger = SimpleNamespace(name=name, version="v2", spec=spec, classes=[], tag=f"{name}:v2")
    labels = {"model_name": name, "model_version": "v1", "challenger_version": "v2"}
    return Shadow(champion, challenger, model, Answers(), max_queue_rows=max_queue_rows,
                  rtol=0.05), labels


def value(metric: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def answers(values: list[float]) -> list[dict[str, Any]]:
    return [{"model_version": "v1", "prediction": v} for v in values]


def test_agreement_within_the_relative_tolerance_and_both_answers_recorded() -> None:
    recorded: list = []
    model = Model(100.0)
    live, labels = shadow(model)
    sent = answers([100.0, 104.0, 96.0, 106.0, 90.0])  # within 5% of 100: the first three
    live.submit([{"x": i} for i in range(5)], sent, lambda r, a: recorded.append((r, a)))
    live.close()
    assert value("tabular_shadow_rows_total", labels) == 5
    assert value("tabular_shadow_agreements_total", labels) == 3
    assert value("tabular_shadow_agreement_rate", labels) == 0.6
    [(records, both)] = recorded
    assert records == [{"x": i} for i in range(5)]
    assert [a["shadow"]["prediction"] for a in both] == [100.0] * 5
    assert [a["prediction"] for a in both] == [a["prediction"] for a in sent]
    assert all("shadow" not in a for a in sent)  # the champion's answers are left alone


def test_a_full_queue_drops_shadow_work_and_leaves_recording_to_the_caller() -> None:
    recorded: list = []

    def record(records, answers) -> None:
        recorded.append((records, answers))

    model = Model(1.0)
    model.gate.clear()  # the challenger is stuck on its first call
    live, labels = shadow(model, max_queue_rows=4)
    assert live.submit([{"x": 0}] * 3, answers([1.0] * 3), record)  # taken by the stuck call
    for _ in range(100):  # wait until the thread has taken it off the queue
        if live._queued_rows == 0:
            break
        threading.Event().wait(0.01)
    assert live.submit([{"x": 1}] * 4, answers([1.0] * 4), record)  # fills the queue
    assert not live.submit([{"x": 2}] * 2, answers([1.0] * 2), record)  # over the bound
    assert value("tabular_shadow_dropped_rows_total", labels) == 2
    assert recorded == []  # dropped: the caller records the champion's answers itself
    model.gate.set()
    live.close()
    # The 4 queued behind the stuck call were scored in one call, not one per request.
    assert model.calls == [3, 4]
    assert value("tabular_shadow_rows_total", labels) == 7
    assert [len(r) for r, _ in recorded] == [3, 4]
    assert not live.submit([{"x": 3}], answers([1.0]), record)  # closed: nothing more taken


def test_a_failing_challenger_is_counted_and_the_shadow_keeps_going() -> None:
    recorded: list = []

    def record(records, answers) -> None:
        recorded.append((records, answers))

    model = Model(1.0)
    model.fail = True
    live, labels = shadow(model)
    live.submit([{"x": 0}] * 2, answers([1.0, 1.0]), record)
    live._executor.submit(lambda: None).result(10)  # the failed drain has finished
    model.fail = False
    live.submit([{"x": 1}], answers([1.0]), record)
    live.close()
    assert value("tabular_shadow_errors_total", labels) == 2
    assert value("tabular_shadow_rows_total", labels) == 1
    # The champion's answers are recorded either way; the challenger's only when it scored.
    assert "shadow" not in recorded[0][1][0] and "shadow" in recorded[1][1][0]
