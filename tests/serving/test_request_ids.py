"""New request ids are UUIDv7: time-ordered, so the store's unique index grows at its end."""

from __future__ import annotations

import time
import uuid

from serving.request_ids import new_id, usable


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
