"""New request ids are UUIDv7: time-ordered, so the store's unique index grows at its end."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from serving.request_ids import (
    REQUEST_ID,
    RequestIdMiddleware,
    _Entropy,
    new_id,
    record_ids,
    stamped,
    usable,
    v2_parameters,
)


def test_new_ids_are_version_7_uuids_carrying_their_time() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_id())
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after
    assert usable(str(made))


def test_ids_made_later_sort_later_and_never_repeat() -> None:
    first = [new_id() for _ in range(5_000)]
    time.sleep(0.002)
    later = [new_id() for _ in range(5_000)]
    assert max(first) < min(later)  # the text sorts as the time: fixed-width hex
    assert len(set(first + later)) == 10_000


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    import os

    new_id()  # the pool is filled in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, ",".join(new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode().split(",")
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(3)]
    # Same millisecond or not, the random parts differ: the child did not inherit the pool.
    assert {c[14:] for c in child}.isdisjoint({p[14:] for p in parent})


@pytest.mark.parametrize(("given", "ok"), [
    ("order-42.retry_1:a", True), ("a" * 100, True), ("a" * 101, False), ("", False),
    ("two words", False), ("line\nbreak", False), ("slash/in/it", False), ("é", False),
])
def test_usable_ids_fit_the_store_and_a_url(given: str, ok: bool) -> None:
    assert usable(given) is ok


def test_one_record_keeps_the_id_and_several_are_numbered() -> None:
    assert record_ids("abc", 1) == ["abc"]
    assert record_ids("abc", 3) == ["abc.0", "abc.1", "abc.2"]


def test_stamped_answers_carry_id_and_time_in_the_answer_models_order() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    answers = [{"model_name": "m", "model_version": "v", "prediction": 1},
               {"model_name": "m", "model_version": "v", "prediction": 0}]
    stamped_answers = stamped(answers, ["r.0", "r.1"], at)
    assert [list(a) for a in stamped_answers] == [
        ["model_name", "model_version", "request_id", "timestamp", "prediction"]] * 2
    assert [(a["request_id"], a["prediction"]) for a in stamped_answers] == [("r.0", 1),
                                                                           ("r.1", 0)]
    assert {a["timestamp"] for a in stamped_answers} == {at.isoformat()}
    with pytest.raises(ValueError):
        stamped(answers, ["r.0"], at)


def test_v2_parameters_name_the_request_and_each_row_only_when_there_are_several() -> None:
    one = [{"request_id": "r", "timestamp": "t"}]
    several = [{"request_id": "r.0", "timestamp": "t"}, {"request_id": "r.1", "timestamp": "t"}]
    token = REQUEST_ID.set("r")
    try:
        assert v2_parameters(one) == {"request_id": "r", "timestamp": "t"}
        assert v2_parameters(several) == {"request_id": "r", "timestamp": "t",
                                          "request_ids": ["r.0", "r.1"]}
    finally:
        REQUEST_ID.reset(token)


async def _through_middleware(path: str, headers: list[tuple[bytes, bytes]],
                              answer_headers: list[tuple[bytes, bytes]] | None = None,
                              scope_type: str = "http") -> tuple[str | None, list]:
    """The id the app saw and the headers the client got."""
    seen: list[str | None] = []
    sent: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        assert scope["path"] == path and (await receive())["type"] == "http.request"
        seen.append(REQUEST_ID.get())
        start = {"type": "http.response.start", "status": 200}
        if answer_headers is not None:  # an answer may come with no header list at all
            start["headers"] = list(answer_headers)
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    middleware = RequestIdMiddleware(app, paths={"/predict"})
    await middleware({"type": scope_type, "path": path, "headers": headers}, receive, send)
    assert REQUEST_ID.get() is None  # reset after the request
    return seen[0], sent[0].get("headers", [])


def test_a_usable_client_id_is_used_and_echoed_once() -> None:
    seen, headers = asyncio.run(_through_middleware(
        "/predict", [(b"x-request-id", b" order-7 ")],
        answer_headers=[(b"X-Request-ID", b"stale"), (b"content-type", b"application/json")]))
    assert seen == "order-7"
    assert headers == [(b"content-type", b"application/json"), (b"x-request-id", b"order-7")]


def test_an_unusable_or_missing_client_id_is_replaced_by_a_new_one() -> None:
    for given in ([(b"x-request-id", b"no spaces allowed")], []):
        seen, headers = asyncio.run(_through_middleware("/predict", given))
        assert seen is not None and uuid.UUID(seen).version == 7
        assert headers == [(b"x-request-id", seen.encode())]


def test_other_paths_and_scopes_get_no_id() -> None:
    for path, kind in (("/metrics", "http"), ("/predict", "websocket")):
        seen, headers = asyncio.run(_through_middleware(path, [(b"x-request-id", b"abc")],
                                                        scope_type=kind))
        assert seen is None and headers == []


def test_the_entropy_pool_hands_out_ten_fresh_bytes_per_id_across_refills() -> None:
    pool = _Entropy()
    taken = [pool.take() for _ in range(2 * _Entropy.SIZE // 10 + 3)]  # two refills
    assert {len(t) for t in taken} == {10}
    assert len(set(taken)) == len(taken)
    before = pool.pool
    pool.clear()  # what a forked child does: nothing of the parent's pool is handed out
    assert pool.take() not in before
