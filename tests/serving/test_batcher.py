"""The micro-batcher on its own: batching, order, errors and deadline shedding (no server)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batcher import MicroBatcher
from serving.overload import ADMISSION, Admission, Overloaded


class SlowModel:
    """Scores each record as its `x`; records every call's size; holds each call `delay` s."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, records: list[dict]) -> np.ndarray:
        self.release.wait(5)
        time.sleep(self.delay)
        self.calls.append(len(records))
        return np.array([[r["x"]] for r in records], dtype=float)


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_calls_and_keep_their_order() -> None:
    model = SlowModel(delay=0.02)
    batcher = MicroBatcher(model, max_rows=100)

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.score([{"x": i}, {"x": i + 0.5}])
                                      for i in range(20)))
    outs = run(main())
    batcher.close()
    for i, out in enumerate(outs):
        assert out[:, 0].tolist() == [i, i + 0.5]
    assert sum(model.calls) == 40
    assert len(model.calls) < 20  # some requests were scored together
    assert max(model.calls) > 2


def test_a_call_never_exceeds_max_rows_except_one_large_request() -> None:
    model = SlowModel(delay=0.01)
    batcher = MicroBatcher(model, max_rows=5)

    async def main() -> None:
        await asyncio.gather(*(batcher.score([{"x": 1}] * 2) for _ in range(10)),
                             batcher.score([{"x": 1}] * 12))
    run(main())
    batcher.close()
    assert sum(model.calls) == 32
    assert all(c <= 5 or c == 12 for c in model.calls), model.calls


def test_an_error_reaches_every_caller_of_that_call_and_the_next_call_works() -> None:
    calls = []

    def flaky(records: list[dict]) -> np.ndarray:
        calls.append(len(records))
        if len(calls) == 1:
            raise ValueError("boom")
        return np.zeros((len(records), 1))
    batcher = MicroBatcher(flaky, max_rows=10)

    async def main() -> None:
        with pytest.raises(ValueError, match="boom"):
            await batcher.score([{"x": 1}])
        assert (await batcher.score([{"x": 2}])).shape == (1, 1)
    run(main())
    batcher.close()


def test_a_request_past_its_deadline_is_refused_unscored() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model, max_rows=10)

    async def main() -> None:
        ADMISSION.set(Admission("/predict", time.monotonic() - 0.001))
        with pytest.raises(Overloaded, match=r"^waited too long before reaching the model$"):
            await batcher.score([{"x": 1}])
    run(main())
    batcher.close()
    assert model.calls == []


def test_requests_whose_deadline_passes_in_the_queue_are_refused_before_the_model() -> None:
    model = SlowModel()
    model.release.clear()  # the first call blocks until released
    batcher = MicroBatcher(model, max_rows=100)

    async def request(x: int, wait_s: float) -> object:
        ADMISSION.set(Admission("/predict", time.monotonic() + wait_s))
        try:
            return (await batcher.score([{"x": x}]))[0, 0]
        except Overloaded as refused:  # in the queue, not at the door
            assert str(refused) == "waited too long for the model"
            return "shed"

    async def main() -> list[object]:
        first = asyncio.create_task(request(0, 10))
        await asyncio.sleep(0.05)  # the first call is now running (and blocked)
        waiting = [asyncio.create_task(request(i, 0.1 if i % 2 else 10)) for i in range(1, 7)]
        await asyncio.sleep(0.3)  # the odd ones' deadlines pass while they queue
        model.release.set()
        return await asyncio.gather(first, *waiting)
    outs = run(main())
    batcher.close()
    assert outs == [0, "shed", 2, "shed", 4, "shed", 6]
    assert model.calls == [1, 3]  # the shed requests never reached the model


def test_small_batches_are_scored_on_the_loop_large_ones_in_the_model_thread() -> None:
    threads: list[tuple[int, str]] = []

    def model(records: list[dict]) -> np.ndarray:
        threads.append((len(records), threading.current_thread().name))
        return np.array([[r["x"]] for r in records], dtype=float)

    batcher = MicroBatcher(model, max_rows=100, inline_max_rows=4)

    async def main() -> tuple[np.ndarray, np.ndarray]:
        loop_thread = threading.current_thread().name
        small = await batcher.score([{"x": 1.0}] * 4)
        large = await batcher.score([{"x": 2.0}] * 5)
        assert threads == [(4, loop_thread), (5, threads[1][1])]
        assert threads[1][1] != loop_thread
        return small, large

    small, large = run(main())
    batcher.close()
    assert small[:, 0].tolist() == [1.0] * 4 and large[:, 0].tolist() == [2.0] * 5


def test_requests_that_fill_max_rows_exactly_share_one_call() -> None:
    model = SlowModel()
    model.release.clear()
    batcher = MicroBatcher(model, max_rows=4)

    async def main() -> None:
        first = asyncio.create_task(batcher.score([{"x": 0}]))
        await asyncio.sleep(0.05)  # the first call is running (and blocked)
        queued = [asyncio.create_task(batcher.score([{"x": i}] * 2)) for i in (1, 2)]
        await asyncio.sleep(0.05)
        model.release.set()
        await asyncio.gather(first, *queued)
    run(main())
    batcher.close()
    assert model.calls == [1, 4]


def test_the_model_runs_in_its_own_single_thread() -> None:
    threads: list[str] = []

    def model(records: list[dict]) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return np.zeros((len(records), 1))
    batcher = MicroBatcher(model, max_rows=10)

    async def main() -> None:
        for _ in range(3):
            await batcher.score([{"x": 1}])
    run(main())
    batcher.close()
    assert threads == ["model_0"] * 3  # not the event loop's shared default executor


async def _started_together(batcher: MicroBatcher, *records: list[dict]) -> list:
    """Queue requests before the batcher's loop first runs (so they are all queued when it
    takes its first batch); returns their tasks."""
    tasks = [asyncio.create_task(batcher.score(r)) for r in records]
    await asyncio.sleep(0)  # each request is queued; the batcher's loop has not run yet
    return tasks


def test_a_cancelled_request_is_skipped_and_the_rest_are_scored() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model, max_rows=10)

    async def main() -> list:
        gone, *rest = await _started_together(batcher, [{"x": 0}], [{"x": 1}], [{"x": 2}])
        gone.cancel()  # the client went away before its batch was taken
        outs = await asyncio.wait_for(asyncio.gather(*rest), timeout=3)
        return [o[0, 0] for o in outs]
    assert run(main()) == [1, 2]
    batcher.close()
    assert model.calls == [2]  # the cancelled request's record was not scored


def test_after_a_failed_call_the_requests_queued_behind_it_are_scored() -> None:
    def model(records: list[dict]) -> np.ndarray:
        if records[0]["x"] == "bad":
            raise ValueError("bad record")
        return np.array([[r["x"]] for r in records], dtype=float)
    batcher = MicroBatcher(model, max_rows=1)  # one request per call

    async def main() -> object:
        bad, good = await _started_together(batcher, [{"x": "bad"}], [{"x": 5}])
        with pytest.raises(ValueError, match="bad record"):
            await bad
        return (await asyncio.wait_for(good, timeout=3))[0, 0]
    assert run(main()) == 5
    batcher.close()


def test_close_does_not_wait_for_a_running_model_call() -> None:
    model = SlowModel()
    model.release.clear()
    batcher = MicroBatcher(model, max_rows=10)

    async def main() -> float:
        pending = asyncio.create_task(batcher.score([{"x": 1}]))
        await asyncio.sleep(0.05)  # the call is running (and blocked)
        start = time.monotonic()
        batcher.close()
        took = time.monotonic() - start
        model.release.set()
        pending.cancel()
        return took
    assert run(main()) < 1.0
