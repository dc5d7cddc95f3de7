"""Ground truth for stored predictions: one or up to 1,000 at a time, by request id.
Unknown ids are reported per item; feedback sent again replaces the earlier one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine

from store.models import predictions

MAX_FEEDBACK = 1000
Status = Literal["stored", "replaced", "unknown_request_id"]


@dataclass(frozen=True)
class Feedback:
    request_id: str
    actual: Any  # a class label or a number; the service validates it against the spec


@dataclass(frozen=True)
class FeedbackResult:
    request_id: str
    status: Status

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "status": self.status}


def record_feedback(engine: Engine, items: Sequence[Feedback],
                    received_at: datetime | None = None) -> list[FeedbackResult]:
    """Store each item's `actual` on its prediction; one result per item, in order.

    One transaction: ids looked up in one query, then one executemany UPDATE. Within a
    call, a later item for the same id wins, as a later call would.
    """
    if not 1 <= len(items) <= MAX_FEEDBACK:
        raise ValueError(f"1..{MAX_FEEDBACK} feedback items per call, not {len(items)}")
    received_at = received_at or datetime.now(UTC)
    ids = list(dict.fromkeys(item.request_id for item in items))
    with engine.begin() as connection:
        had_feedback = dict(connection.execute(
            select(predictions.c.request_id, predictions.c.feedback_at.is_not(None))
            .where(predictions.c.request_id.in_(ids))).tuples().all())
        latest = {item.request_id: item.actual for item in items
                  if item.request_id in had_feedback}
        if latest:
            connection.execute(
                update(predictions)
                .where(predictions.c.request_id == bindparam("rid"))
                .values(actual=bindparam("new_actual"), feedback_at=bindparam("at")),
                [{"rid": rid, "new_actual": actual, "at": received_at}
                 for rid, actual in latest.items()])
    results, seen = [], set()
    for item in items:
        if item.request_id not in had_feedback:
            status: Status = "unknown_request_id"
        elif had_feedback[item.request_id] or item.request_id in seen:
            status = "replaced"
        else:
            status = "stored"
        seen.add(item.request_id)
        results.append(FeedbackResult(item.request_id, status))
    return results
