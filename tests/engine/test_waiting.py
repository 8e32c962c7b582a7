"""wait_until (smslink/waiting.py): waits for an event at most so long, and a task asked to
stop while its wait ends is stopped. With asyncio.wait_for on Python 3.11 that cancel was
lost (seen: a run's progress writer went on for ever after the run's last message)."""

from __future__ import annotations

import asyncio
import time

import pytest

from smslink.waiting import at_most, wait_until


def test_it_says_whether_the_event_came_in_time():
    async def main() -> tuple[bool, bool, float]:
        event = asyncio.Event()
        started = time.monotonic()
        missed = await wait_until(event, 0.05)
        waited = time.monotonic() - started
        asyncio.get_running_loop().call_later(0.01, event.set)
        return missed, await wait_until(event, 5), waited

    missed, came, waited = asyncio.run(main())
    assert (missed, came) == (False, True)
    assert 0.04 <= waited < 1


@pytest.mark.parametrize("turns", range(4))
def test_a_task_cancelled_as_its_wait_ends_is_cancelled(turns: int):
    """The event is set and the waiting task cancelled `turns` loop turns later: in every
    case the task ends cancelled instead of going on waiting (wait_for lost the first
    three)."""

    async def main() -> str:
        event = asyncio.Event()

        async def wait_again_and_again() -> str:
            for _ in range(20):
                await wait_until(event, 0.5)
                event.clear()
            return "went on"

        task = asyncio.create_task(wait_again_and_again())
        await asyncio.sleep(0.01)  # the task is waiting
        event.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            return await asyncio.wait_for(task, 20)
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(main()) == "cancelled"


def test_at_most_stops_waiting_for_what_does_not_come():
    async def main() -> float:
        started = time.monotonic()
        await at_most(asyncio.sleep(30), 0.05)
        return time.monotonic() - started

    assert asyncio.run(main()) < 1
