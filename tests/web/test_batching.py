"""BatchedCalls (web/batching.py): what arrives while a call runs goes into the next call,
each caller gets its own result, a failure reaches exactly the callers of its batch, and a
caller that gives up or a service that stops leaves nobody waiting."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from smslink.web.batching import BatchedCalls


class Recorder:
    """`apply` for the tests: notes each batch, may hold a call until released, and fails
    a batch holding a negative number."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[str]:
        self.batches.append(list(items))
        self.entered.set()
        self.release.wait(5)
        if any(i < 0 for i in items):
            raise ValueError(f"refused {list(items)}")
        return [f"r{i}" for i in items]


async def _until(event: threading.Event) -> None:
    for _ in range(500):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the call never started")


def test_what_arrives_during_a_call_goes_into_the_next_call_together():
    recorder = Recorder()

    async def main() -> list[str]:
        batched = BatchedCalls(recorder)
        recorder.release.clear()
        first = asyncio.create_task(batched.submit(1))
        await _until(recorder.entered)  # the call for [1] is under way
        rest = [asyncio.create_task(batched.submit(i)) for i in (2, 3, 4)]
        await asyncio.sleep(0.05)
        recorder.release.set()
        return [await first, *[await r for r in rest]]

    assert asyncio.run(main()) == ["r1", "r2", "r3", "r4"]
    assert recorder.batches == [[1], [2, 3, 4]]


def test_a_batch_never_exceeds_its_size():
    recorder = Recorder()

    async def main() -> list[str]:
        batched = BatchedCalls(recorder, max_batch=2)
        return list(await asyncio.gather(*(batched.submit(i) for i in range(5))))

    assert asyncio.run(main()) == [f"r{i}" for i in range(5)]
    assert recorder.batches == [[0, 1], [2, 3], [4]]


def test_an_item_that_fails_fails_its_own_caller_only():
    """A failed call is made again item by item: the items beside the bad one get their
    results, the bad one its error."""
    recorder = Recorder()

    async def main() -> list[object]:
        batched = BatchedCalls(recorder, max_batch=3)
        calls = [batched.submit(i) for i in (1, -1, 2, 3)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    first, second, third, fourth = asyncio.run(main())
    assert (first, third, fourth) == ("r1", "r2", "r3")
    assert isinstance(second, ValueError) and str(second) == "refused [-1]"
    assert recorder.batches == [[1, -1, 2], [1], [-1], [2], [3]]


def test_when_everything_fails_the_items_are_not_each_tried_alone():
    """Two items in a row failing alone with nothing succeeding is taken for the store
    being away: the rest get the failure at once (an outage costs three tries, not one a
    callback)."""
    recorder = Recorder()

    async def main() -> list[object]:
        batched = BatchedCalls(recorder, max_batch=5)
        calls = [batched.submit(i) for i in (-1, -2, -3, -4, -5)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    answers = asyncio.run(main())
    assert all(isinstance(a, ValueError) for a in answers)
    assert recorder.batches == [[-1, -2, -3, -4, -5], [-1], [-2]]


def test_a_caller_that_gives_up_leaves_the_others_their_results():
    recorder = Recorder()

    async def main() -> tuple[bool, list[str]]:
        batched = BatchedCalls(recorder)
        recorder.release.clear()
        impatient = asyncio.create_task(batched.submit(1))
        patient = asyncio.create_task(batched.submit(2))
        await _until(recorder.entered)
        impatient.cancel()
        recorder.release.set()
        later = await batched.submit(3)
        return impatient.cancelled(), [await patient, later]

    assert asyncio.run(main()) == (True, ["r2", "r3"])


def test_when_the_service_stops_nobody_waits_for_ever():
    recorder = Recorder()

    async def main() -> None:
        batched = BatchedCalls(recorder)
        recorder.release.clear()
        waiting = [asyncio.create_task(batched.submit(i)) for i in (1, 2)]
        await _until(recorder.entered)
        queued = asyncio.create_task(batched.submit(3))
        await asyncio.sleep(0)
        assert batched._drainer is not None
        batched._drainer.cancel()
        for task in (*waiting, queued):
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 2)
        recorder.release.set()

    asyncio.run(main())
