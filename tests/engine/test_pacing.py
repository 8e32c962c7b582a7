"""The adaptive request window and the segment rate, driven directly on an event loop."""

from __future__ import annotations

import asyncio

import pytest

from smslink.engine.pacing import (
    BACKOFF_FACTOR,
    INITIAL_WINDOW,
    PROBE_SLOWDOWN,
    AdaptiveWindow,
    SegmentRate,
)


def test_slow_start_doubles_the_window_each_round_up_to_the_ceiling() -> None:
    async def scenario() -> list[int]:
        window = AdaptiveWindow(ceiling=100)
        seen = []
        for _ in range(6):
            tickets = [await window.acquire() for _ in range(window.window)]
            seen.append(len(tickets))
            for ticket in tickets:
                window.release(ticket, throttled=False)
        return seen

    assert asyncio.run(scenario()) == [8, 16, 32, 64, 100, 100]


def test_a_429_shrinks_the_window_below_the_load_it_was_sent_into() -> None:
    async def scenario() -> AdaptiveWindow:
        window = AdaptiveWindow(ceiling=100, initial=30)
        tickets = [await window.acquire() for _ in range(30)]
        window.release(tickets[-1], throttled=True)  # the 30th in flight was refused
        return window

    window = asyncio.run(scenario())
    assert window.window == int(30 * BACKOFF_FACTOR)
    assert window.throttled == 1 and window.decreases == 1


def test_429s_sent_into_an_older_window_shrink_it_only_once() -> None:
    async def scenario() -> AdaptiveWindow:
        window = AdaptiveWindow(ceiling=100, initial=40)
        tickets = [await window.acquire() for _ in range(40)]
        for ticket in tickets[20:]:  # the whole overshoot is refused
            window.release(ticket, throttled=True)
        return window

    window = asyncio.run(scenario())
    assert window.decreases == 1
    assert window.throttled == 20
    assert window.window == int(21 * BACKOFF_FACTOR)


def test_after_a_429_the_window_regrows_to_the_limit_then_probes_past_it_slowly() -> None:
    async def answer(window: AdaptiveWindow, count: int) -> None:
        for _ in range(count):
            window.release(await window.acquire(), throttled=False)

    async def scenario() -> list[int]:
        window = AdaptiveWindow(ceiling=100, initial=20)
        tickets = [await window.acquire() for _ in range(20)]
        window.release(tickets.pop(), throttled=True)  # the 20th was refused: limit 19
        seen = [window.window]
        for ticket in tickets:
            window.release(ticket, throttled=False)
        seen.append(window.window)  # one window of answers: about one more
        await answer(window, 19 * PROBE_SLOWDOWN)
        seen.append(window.window)  # past the limit: one more per PROBE_SLOWDOWN windows
        return seen

    assert asyncio.run(scenario()) == [18, 19, 20]


def test_the_window_never_drops_below_one() -> None:
    async def scenario() -> int:
        window = AdaptiveWindow(ceiling=10, initial=1)
        for _ in range(5):
            window.release(await window.acquire(), throttled=True)
        return window.window

    assert asyncio.run(scenario()) == 1


def test_waiters_are_admitted_in_order_and_a_cancelled_one_leaks_no_slot() -> None:
    async def scenario() -> tuple[list[int], int]:
        window = AdaptiveWindow(ceiling=2, initial=2)
        held = [await window.acquire(), await window.acquire()]
        order: list[int] = []

        async def wait(n: int) -> None:
            ticket = await window.acquire()
            order.append(n)
            window.release(ticket, throttled=False)

        tasks = [asyncio.create_task(wait(n)) for n in range(4)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        for ticket in held:
            window.release(ticket, throttled=False)
        await asyncio.gather(*tasks, return_exceptions=True)
        return order, window.in_flight

    order, in_flight = asyncio.run(scenario())
    assert order == [0, 2, 3]
    assert in_flight == 0


def test_initial_window_is_capped_by_the_ceiling() -> None:
    assert AdaptiveWindow(ceiling=3).window == 3
    assert AdaptiveWindow(ceiling=500).window == INITIAL_WINDOW
    with pytest.raises(ValueError):
        AdaptiveWindow(ceiling=0)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_segment_rate_books_consecutive_slots_by_segments() -> None:
    clock = _Clock()
    rate = SegmentRate(per_second=1000.0, clock=clock)  # 1 ms per segment keeps sleeps short

    async def scenario() -> list[float]:
        booked = []
        for segments in (1, 3, 1):
            await rate.take(segments)
            booked.append(rate._next_free - clock.now)
        return booked

    assert asyncio.run(scenario()) == pytest.approx([0.001, 0.004, 0.005])


def test_segment_rate_spreads_real_sends_over_time() -> None:
    async def scenario() -> float:
        rate = SegmentRate(per_second=100.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(rate.take(1) for _ in range(21)))
        return loop.time() - start

    assert asyncio.run(scenario()) >= 0.19  # 20 gaps of 10 ms after the first
    with pytest.raises(ValueError):
        SegmentRate(0)


def test_a_request_that_got_no_answer_neither_grows_nor_shrinks_the_window() -> None:
    async def scenario() -> tuple[int, int]:
        window = AdaptiveWindow(ceiling=100)
        before = window.window
        for _ in range(5):
            window.release(await window.acquire(), answered=False, throttled=False)
        return before, window.window

    before, after = asyncio.run(scenario())
    assert after == before
