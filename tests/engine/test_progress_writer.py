"""ProgressWriter (engine/progress_writer.py): progress reaches the store in order and in
full however the writer is left; a just-accepted state held by `put_later` is written
with the delivery's next state as one row (both events kept), or on its own once it has
waited `hold_s`. Real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from smslink.domain.models import Delivery, Progress, ResultStatus, RunSnapshot, Stage
from smslink.engine.progress_writer import ProgressWriter
from smslink.store import Store

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _claimed_run(store: Store, n: int, name: str = "in") -> int:
    run_id = store.runs.create_run(
        touchpoint="t",
        connection="c",
        input_path=f"{name}.csv",
        output_path=f"{name}-results.csv",
        snapshot=RunSnapshot("Hi", "phone"),
    ).id
    store.deliveries.add_deliveries(
        run_id,
        [
            Delivery(run_id, seq, {"phone": f"+1212555{seq:04d}"}, f"+1212555{seq:04d}", "Hi", 1)
            for seq in range(n)
        ],
        ["phone"],
    )
    store.deliveries.claim_pending(run_id, n, NOW)
    return run_id


def _accepted(run_id: int, seq: int) -> Progress:
    return Progress(run_id, seq, Stage.TRACKING, twilio_status="queued", message_sid=f"SM{seq}")


def _delivered(run_id: int, seq: int) -> Progress:
    return Progress(
        run_id, seq, Stage.DONE, ResultStatus.DELIVERED, "delivered", f"SM{seq}", polls=1
    )


def test_leaving_with_a_full_buffer_writes_it_all_and_returns(store: Store):
    """A full buffer wakes the flusher; leaving the block at that moment, or a few loop
    turns later, still ends and writes every state, in order. (The lost cancel that once
    kept a flusher running for ever is reproduced in test_waiting.py.)"""
    for turns in range(4):  # how far the flusher got with the wake-up when the block ends
        run_id = _claimed_run(store, 30, f"in{turns}")

        async def main(run_id: int = run_id, turns: int = turns) -> None:
            async with ProgressWriter(store, max_items=10, chunk=4) as writer:
                await asyncio.sleep(0.05)  # the flusher is waiting
                for seq in range(30):
                    writer.put(_accepted(run_id, seq))
                writer.put(_delivered(run_id, 0))
                for _ in range(turns):
                    await asyncio.sleep(0)

        asyncio.run(asyncio.wait_for(main(), 5))
        stages = [d.stage for d in store.deliveries.iter_deliveries(run_id)]
        assert stages == [Stage.DONE] + [Stage.TRACKING] * 29
        events = [e.twilio_status for e in store.events.after(0, 1000) if e.run_id == run_id]
        assert events[:1] + events[-1:] == ["queued", "delivered"] and len(events) == 31


def test_a_held_state_is_written_with_the_next_one_or_after_its_hold(store: Store):
    run_id = _claimed_run(store, 3)

    async def main() -> None:
        async with ProgressWriter(store, max_delay_s=0.01, hold_s=0.3) as writer:
            writer.put_later(_accepted(run_id, 0))
            writer.put_later(_accepted(run_id, 1))
            await asyncio.sleep(0.1)
            stages = [d.stage for d in store.deliveries.iter_deliveries(run_id)]
            assert stages == [Stage.POSTING] * 3  # held: a resume would reconcile them
            writer.put(_delivered(run_id, 0))
            await asyncio.sleep(0.1)
            [first, second, _] = store.deliveries.iter_deliveries(run_id)
            assert (first.stage, first.message_sid) == (Stage.DONE, "SM0")
            assert second.stage is Stage.POSTING
            await asyncio.sleep(0.4)  # past the hold: written on its own
            assert [d.stage for d in store.deliveries.iter_deliveries(run_id)][1] is (
                Stage.TRACKING
            )
            writer.put_later(_accepted(run_id, 2))  # left with the block: written then

    asyncio.run(main())
    stages = [d.stage for d in store.deliveries.iter_deliveries(run_id)]
    assert stages == [Stage.DONE, Stage.TRACKING, Stage.TRACKING]
    events = [(e.seq, e.twilio_status) for e in store.events.after(0, 100)]
    assert events == [(0, "queued"), (0, "delivered"), (1, "queued"), (2, "queued")]


def test_a_second_cancel_while_leaving_still_writes_everything(store: Store):
    """A second Ctrl-C or SIGTERM lands while the block is ending: the states in hand,
    held ones included, are still written, in order."""
    run_id = _claimed_run(store, 6)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        writer = ProgressWriter(store, max_delay_s=60, chunk=1, hold_s=60)
        try:
            async with writer:
                writer.put_later(_accepted(run_id, 5))
                for seq in range(5):
                    writer.put(_accepted(run_id, seq))
                task.cancel()
                await asyncio.sleep(1)  # the first cancel
        except asyncio.CancelledError:
            pass

    async def cancelled_twice() -> None:
        inner = asyncio.create_task(main())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        inner.cancel()  # the second, as the block leaves
        with contextlib.suppress(asyncio.CancelledError):
            await inner

    asyncio.run(cancelled_twice())
    assert [d.stage for d in store.deliveries.iter_deliveries(run_id)] == [Stage.TRACKING] * 6


def test_a_failed_write_loses_nothing(store: Store, monkeypatch: pytest.MonkeyPatch):
    """The store fails one write (locked, say): the flusher's batch goes back in front,
    and the block's end writes it with the rest once the store works again."""
    run_id = _claimed_run(store, 6)
    save = store.deliveries.save_progress
    failures = [RuntimeError("database is locked")]

    def flaky(batch: list[Progress]) -> None:
        if failures:
            raise failures.pop()
        save(batch)

    monkeypatch.setattr(store.deliveries, "save_progress", flaky)

    async def main() -> None:
        async with ProgressWriter(store, max_delay_s=0.01, chunk=2) as writer:
            for seq in range(3):
                writer.put(_accepted(run_id, seq))
            await asyncio.sleep(0.1)  # the flusher fails and stops
            for seq in range(3, 6):
                writer.put(_accepted(run_id, seq))

    with pytest.raises(RuntimeError, match="locked"):
        asyncio.run(main())  # the failure is not swallowed
    assert [d.stage for d in store.deliveries.iter_deliveries(run_id)] == [Stage.TRACKING] * 6


def _slowed(store: Store, monkeypatch: pytest.MonkeyPatch, delay_s: float) -> list[str]:
    """Make each save_progress take `delay_s` longer; returns the names of the threads
    that ran them."""
    save = store.deliveries.save_progress
    threads: list[str] = []

    def slow(batch: list[Progress]) -> list[str]:
        threads.append(threading.current_thread().name)
        time.sleep(delay_s)
        return save(batch)

    monkeypatch.setattr(store.deliveries, "save_progress", slow)
    return threads


def test_the_flusher_writes_beside_the_loop(store: Store, monkeypatch: pytest.MonkeyPatch):
    """A transaction of the flusher does not hold the event loop: answers are handled
    while it runs (here a ticker keeps ticking through a 0.3 s write)."""
    run_id = _claimed_run(store, 4)
    threads = _slowed(store, monkeypatch, 0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> None:
        ticking = asyncio.create_task(ticker())
        async with ProgressWriter(store, max_delay_s=0.01) as writer:
            for seq in range(4):
                writer.put(_accepted(run_id, seq))
            await asyncio.sleep(0.2)  # the flusher's write is under way
            assert ticks >= 10
        ticking.cancel()

    asyncio.run(main())
    assert threads and threading.main_thread().name not in threads
    assert [d.stage for d in store.deliveries.iter_deliveries(run_id)] == [Stage.TRACKING] * 4


def test_leaving_while_a_write_runs_beside_waits_for_it_and_keeps_the_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
):
    """Cancelled (Ctrl-C) while the flusher's write runs on its thread: the block's end
    waits for that write, then writes what came after it, so a later state is never
    overwritten by an earlier one and the events keep their order."""
    run_id = _claimed_run(store, 2)
    _slowed(store, monkeypatch, 0.3)

    async def main() -> None:
        async with ProgressWriter(store, max_delay_s=0.01) as writer:
            writer.put(_accepted(run_id, 0))
            writer.put(_accepted(run_id, 1))
            await asyncio.sleep(0.1)  # that write is under way on its thread
            writer.put(_delivered(run_id, 0))
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    [first, second] = store.deliveries.iter_deliveries(run_id)
    assert (first.stage, first.status, second.stage) == (
        Stage.DONE,
        ResultStatus.DELIVERED,
        Stage.TRACKING,
    )
    events = [(e.seq, e.twilio_status) for e in store.events.after(0, 100)]
    assert events == [(0, "queued"), (1, "queued"), (0, "delivered")]


def test_a_write_cancelled_before_its_thread_began_is_written_at_the_end(store: Store):
    """The executor's thread is busy when the flusher hands it a write, and the flusher
    is cancelled before that write begins: it never begins, and the block's end writes
    those states itself (nothing lost, nothing written twice)."""
    run_id = _claimed_run(store, 3)
    busy = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        blocker = loop.run_in_executor(None, busy.wait, 5)
        try:
            async with ProgressWriter(store, max_delay_s=0.01) as writer:
                for seq in range(3):
                    writer.put(_accepted(run_id, seq))
                await asyncio.sleep(0.1)  # the write waits behind the blocker
                stages = [d.stage for d in store.deliveries.iter_deliveries(run_id)]
                assert stages == [Stage.POSTING] * 3
                [flusher] = [
                    task
                    for task in asyncio.all_tasks()
                    if task.get_coro().__qualname__ == "ProgressWriter._flush_periodically"
                ]
                flusher.cancel()
                await asyncio.sleep(0)  # the flusher takes the cancel
        finally:
            busy.set()
            await blocker

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert [d.stage for d in store.deliveries.iter_deliveries(run_id)] == [Stage.TRACKING] * 3
    events = [(e.seq, e.twilio_status) for e in store.events.after(0, 100)]
    assert events == [(0, "queued"), (1, "queued"), (2, "queued")]
