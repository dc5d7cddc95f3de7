"""Reading predictions back: history pages (newest first, keyset paging with an opaque
cursor) and one prediction by its request id."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine, RowMapping

from store.models import predictions

MAX_PAGE = 1000


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: str | None  # None: this was the last page

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def prediction_dict(row: RowMapping) -> dict[str, Any]:
    """A stored prediction as the API answers it (JSON-ready)."""
    feedback = None
    if row["feedback_at"] is not None:
        feedback = {"actual": row["actual"], "received_at": row["feedback_at"].isoformat()}
    return {
        "request_id": row["request_id"], "timestamp": row["timestamp"].isoformat(),
        "model_name": row["model_name"], "model_version": row["model_version"],
        "endpoint": row["endpoint"], "features": row["features"], "answer": row["answer"],
        "feedback": feedback,
    }


def encode_cursor(timestamp: datetime, row_id: int) -> str:
    raw = json.dumps([timestamp.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(timestamp)
        if parsed.tzinfo is None or not isinstance(row_id, int):
            raise ValueError
        return parsed, row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("invalid cursor: pass next_cursor from the previous page "
                            "unchanged") from exc


def history(
    engine: Engine, *, model_name: str | None = None, model_version: str | None = None,
    since: datetime | None = None, until: datetime | None = None, limit: int = 100,
    cursor: str | None = None,
) -> HistoryPage:
    """Predictions with since <= timestamp < until, newest first, `limit` per page.

    Keyset paging on (timestamp, id): a page starts strictly after the previous page's
    last row, so rows written meanwhile never shift a page (no duplicates, none skipped
    among the older rows), unlike OFFSET.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1..{MAX_PAGE}, not {limit}")
    query = select(predictions)
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    if model_version is not None:
        query = query.where(predictions.c.model_version == model_version)
    if since is not None:
        query = query.where(predictions.c.timestamp >= since)
    if until is not None:
        query = query.where(predictions.c.timestamp < until)
    if cursor is not None:
        timestamp, row_id = decode_cursor(cursor)
        query = query.where(or_(
            predictions.c.timestamp < timestamp,
            and_(predictions.c.timestamp == timestamp, predictions.c.id < row_id)))
    query = query.order_by(predictions.c.timestamp.desc(), predictions.c.id.desc())
    with engine.connect() as connection:
        rows = connection.execute(query.limit(limit + 1)).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["timestamp"], rows[-1]["id"]) if more else None
    return HistoryPage([prediction_dict(row) for row in rows], next_cursor)


def get_prediction(engine: Engine, request_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(predictions).where(predictions.c.request_id == request_id)
        ).mappings().first()
    return prediction_dict(row) if row is not None else None
