"""Feedback: stored against the prediction, unknown ids reported per item, repeats replace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import Feedback, PredictionStore
from tests.store.conftest import T0, record, write_all


def test_feedback_single_unknown_and_replaced(store: PredictionStore) -> None:
    write_all(store, [record(i) for i in range(3)])
    at = T0 + timedelta(hours=1)
    results = store.feedback([Feedback("req-0", "yes")], received_at=at)
    assert [r.to_dict() for r in results] == [{"request_id": "req-0", "status": "stored"}]
    assert store.get("req-0")["feedback"] == {"actual": "yes", "received_at": at.isoformat()}

    results = store.feedback([Feedback("req-0", "no"), Feedback("ghost", "no"),
                              Feedback("req-1", 3.5)])
    assert [r.status for r in results] == ["replaced", "unknown_request_id", "stored"]
    assert store.get("req-0")["feedback"]["actual"] == "no"  # the later one replaced it
    assert store.get("req-1")["feedback"]["actual"] == 3.5
    assert store.get("req-2")["feedback"] is None


def test_same_id_twice_in_one_call_keeps_the_last(store: PredictionStore) -> None:
    write_all(store, [record(0)])
    results = store.feedback([Feedback("req-0", "no"), Feedback("req-0", "yes")])
    assert [r.status for r in results] == ["stored", "replaced"]
    assert store.get("req-0")["feedback"]["actual"] == "yes"


def test_a_thousand_at_once_and_no_more(store: PredictionStore) -> None:
    write_all(store, [record(i) for i in range(900)])
    items = [Feedback(f"req-{i}", "yes" if i % 2 else "no") for i in range(1000)]
    results = store.feedback(items)
    assert [r.request_id for r in results] == [i.request_id for i in items]
    assert sum(r.status == "stored" for r in results) == 900
    assert sum(r.status == "unknown_request_id" for r in results) == 100
    assert store.get("req-899")["feedback"]["actual"] == "yes"
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        store.feedback([*items, Feedback("req-1", "no")])
    with pytest.raises(ValueError):
        store.feedback([])
