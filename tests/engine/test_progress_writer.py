"""ProgressWriter (engine/progress_writer.py): progress reaches the store in order and in
full however the writer is left; a just-accepted state held by `put_later` is written
with the delivery's next state as one row (both events kept), or on its own once it has
waited `hold_s`. Real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from smslink.domain.models import Delivery, Progress, ResultStatus, RunSnapshot, Stage
from smslink.engine.progress_writer import ProgressWriter
from smslink.store import LeaseHolder, Store

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

    def flaky(batch: list[Progress], **fence: object) -> None:
        if failures:
            raise failures.pop()
        save(batch, **fence)  # type: ignore[arg-type]

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


def test_a_writer_whose_run_was_taken_over_writes_nothing_more_but_a_lapse_alone_writes(
    store: Store,
):
    """The writer works under a lease (`holder`). Lapsed unrenewed with nobody taking it
    (a paused `smslink send` that goes on when it wakes), it writes as before: what it
    holds is all anybody knows. Taken by another process, what it holds is dropped, not
    written over what the successor settled; the successor's own writes go in."""
    run_id = _claimed_run(store, 4)
    runs = store.runs
    lapsed = NOW - timedelta(seconds=1)
    assert runs.acquire_run(run_id, "paused", until=lapsed, now=NOW, replacing=None) is None
    told: list[str] = []
    writer = ProgressWriter(
        store,
        holder=LeaseHolder(run_id, "paused"),
        hold_s=60,
        on_taken=lambda: told.append("taken"),
    )
    writer.put(_delivered(run_id, 0))
    writer.flush()
    assert writer.dropped == 0 and told == []
    later = NOW + timedelta(minutes=1)
    assert runs.acquire_run(run_id, "successor", until=later, now=NOW, replacing=None) is None
    writer.put(_delivered(run_id, 1))
    writer.put_later(_accepted(run_id, 2))  # held, then flushed with the rest
    writer.flush()
    assert writer.dropped == 2
    assert told == ["taken"]  # the lease hears it: nothing more is sent
    successor = ProgressWriter(store, holder=LeaseHolder(run_id, "successor"))
    successor.put(_delivered(run_id, 3))
    successor.flush()
    stages = {d.seq: d.stage for d in store.deliveries.iter_deliveries(run_id, with_row=False)}
    assert stages == {0: Stage.DONE, 1: Stage.POSTING, 2: Stage.POSTING, 3: Stage.DONE}
