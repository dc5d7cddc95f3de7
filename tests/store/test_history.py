"""History pages: complete, newest first, no duplicates, filters; one prediction by id."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import InvalidCursor, PredictionStore
from tests.store.conftest import T0, record, write_all


def _all_pages(store: PredictionStore, limit: int, **filters) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = store.history(limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        ids += [item["request_id"] for item in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def _records(count: int) -> list:
    # Groups of three share a timestamp (e.g. one /predict_batch): ties must page cleanly.
    return [record(i, at=T0 + timedelta(milliseconds=10 * (i // 3)),
                   version="1" if i % 2 else "2") for i in range(count)]


def test_paging_is_complete_ordered_and_without_duplicates(store: PredictionStore) -> None:
    records = _records(250)
    write_all(store, records)
    # Newest first; within one timestamp, the later insert (higher id) first.
    expected = [r.request_id for r in sorted(
        records, key=lambda r: (r.timestamp, int(r.request_id[4:])), reverse=True)]
    for limit in (1, 7, 100, 250, 1000):
        ids = _all_pages(store, limit)
        assert ids == expected, limit
    first = store.history(limit=5).items[0]
    assert first["timestamp"] == records[-1].timestamp.isoformat()
    assert first["model_name"] == "m" and first["endpoint"] == "predict"


def test_rows_written_while_paging_do_not_shift_pages(store: PredictionStore) -> None:
    write_all(store, _records(30))
    page = store.history(limit=10)
    write_all(store, [record(1000 + i, at=T0 + timedelta(days=1, seconds=i))
                      for i in range(5)])  # newer traffic arrives meanwhile
    cursor, seen = page.next_cursor, [i["request_id"] for i in page.items]
    while cursor:
        page = store.history(limit=10, cursor=cursor)
        seen += [i["request_id"] for i in page.items]
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 30
    assert set(seen) == {f"req-{i}" for i in range(30)}  # only the older rows


def test_filters(store: PredictionStore) -> None:
    records = _records(60)
    write_all(store, records)
    since, until = records[9].timestamp, records[30].timestamp
    got = _all_pages(store, 8, since=since, until=until, model_version="1")
    expected = [r.request_id for r in reversed(records)
                if since <= r.timestamp < until and r.model_version == "1"]
    assert got == expected and got
    assert _all_pages(store, 8, model_name="other") == []


def test_limits_and_bad_cursors(store: PredictionStore) -> None:
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            store.history(limit=limit)
    for cursor in ("garbage", "", "W10", "WyIyMDI1LTAxLTAxIiwgMV0"):  # last: naive time
        with pytest.raises(InvalidCursor):
            store.history(cursor=cursor)


def test_get_by_request_id(store: PredictionStore) -> None:
    write_all(store, [record(1, version="7")])
    got = store.get("req-1")
    assert got == {
        "request_id": "req-1", "timestamp": T0.replace(second=1).isoformat(),
        "model_name": "m", "model_version": "7", "endpoint": "predict",
        "features": {"x": 1.0, "c": "a"},
        "answer": {"prediction": "yes", "probabilities": {"no": 0.2, "yes": 0.8}},
        "feedback": None,
    }
    assert store.get("nope") is None
