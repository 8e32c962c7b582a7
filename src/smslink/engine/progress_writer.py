"""Batching delivery progress into the store.

Writing each status change on its own would cost a transaction per message; batching a few
hundred per transaction makes persistence nearly free. Nothing is lost by the delay: a
delivery whose POST succeeded but whose progress was not yet flushed is still POSTING in the
store, and a resume reconciles it with Twilio instead of resending it.

The writes run on the event loop that sends, and a transaction holds the loop for its
whole length: every answer that arrives meanwhile waits, and 99 senders then go out again
in one burst. So, inside `async with`, a full buffer wakes the flushing task instead of
writing inline (a tracking round that finishes 2,000 messages no longer stalls the loop
for four transactions in a row), and that task writes up to `chunk` rows a transaction, letting
the loop run between transactions. The order of writes is the order of `put`.

`put_later` holds a state that may be written late (a message Twilio just accepted, when
no status callback needs its sid in the store) until the delivery's next state arrives
or `hold_s` passes: a message that is final by the next tracking round is then written
once instead of twice, with both of its events. Nothing is lost by the wait: until then
the delivery is POSTING in the store, which a resume reconciles with Twilio.

`holder` (the lease this process works under) fences every transaction: once another
process has taken the run (or part) over, this one writes nothing more about it, and what
it held is dropped. The successor settled every unfinished delivery when it took over
(POSTING ones looked up at Twilio, tracked ones polled again); a late write could only
undo that (a DONE "outcome unknown" over a message the successor found and tracks). A
process whose lease merely lapsed, with nobody taking it, still writes: the check is the
store's lease row, in the same transaction as the write, not this process's clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from smslink.domain.models import Progress
from smslink.store import LeaseHolder, LeaseTaken, Store
from smslink.waiting import wait_until


class ProgressWriter:
    """Collects Progress records and writes them in batches, by size or by age."""

    def __init__(
        self,
        store: Store,
        *,
        max_items: int = 500,
        max_delay_s: float = 0.25,
        chunk: int = 500,
        hold_s: float = 0.0,
        on_stored: Callable[[list[str]], None] | None = None,
        holder: LeaseHolder | None = None,
        on_taken: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._holder = holder
        #: Told when a write found the lease taken (the lease's `taken`: stop sending).
        self._on_taken = on_taken
        #: States dropped because another process had taken the run over.
        self.dropped = 0
        #: Told, after each commit, the message sids the rows written now hold.
        self._on_stored = on_stored
        self._max_items = max_items
        self._max_delay_s = max_delay_s
        self._chunk = max(1, chunk)
        self._pending: list[Progress] = []
        self._hold_s = hold_s
        #: put_later's states by delivery, oldest first, with when each was put.
        self._held: dict[tuple[int, int], tuple[Progress, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._closing = False

    def put(self, progress: Progress) -> None:
        held = self._held.pop((progress.run_id, progress.seq), None)
        if held is not None:  # written in the same transaction, as one row (store)
            self._pending.append(held[0])
        self._pending.append(progress)
        if len(self._pending) >= self._max_items:
            if self._task is None or self._task.done():
                self.flush()  # no flushing task (outside `async with`): write now
            else:
                self._full.set()

    def put_later(self, progress: Progress) -> None:
        """Write `progress` with the delivery's next state, or after `hold_s` (at once,
        as `put`, when `hold_s` is 0)."""
        if self._hold_s <= 0:
            self.put(progress)
            return
        key = (progress.run_id, progress.seq)
        self._held.pop(key, None)  # to the end: the dict stays oldest first
        self._held[key] = (progress, time.monotonic())

    def flush(self) -> None:
        """Write everything pending now (held states too), in one transaction."""
        self._release_held(float("inf"))
        self._write(len(self._pending))

    async def __aenter__(self) -> ProgressWriter:
        self._task = asyncio.create_task(self._flush_periodically())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._task is not None:
                # Asked to stop rather than cancelled: it ends after the slice in hand;
                # shielded, so a second Ctrl-C or SIGTERM cannot cut its write short.
                self._closing = True
                self._full.set()
                await asyncio.shield(self._task)  # its own error, if it failed, is ours
        finally:
            self.flush()  # whatever is left, held states included, after its slices

    async def _flush_periodically(self) -> None:
        while not self._closing:
            await wait_until(self._full, self._max_delay_s)
            self._full.clear()
            self._release_held(time.monotonic() - self._hold_s)
            while self._pending:
                self._write(self._chunk)
                await asyncio.sleep(0)  # let answers that came in meanwhile be handled

    def _write(self, count: int) -> None:
        """Write the first `count` pending states in one transaction. When the store
        fails they stay in front, in order: the next write (a full buffer's, or the
        block's end) tries them again, and raises if the store still fails."""
        if count <= 0 or not self._pending:
            return
        batch, self._pending = self._pending[:count], self._pending[count:]
        try:
            written = self._store.deliveries.save_progress(batch, holder=self._holder)
        except LeaseTaken:
            self.dropped += len(batch)  # the run's new holder decided about these
            if self._on_taken is not None:
                self._on_taken()
            return
        except BaseException:
            self._pending[:0] = batch
            raise
        if self._on_stored is not None:
            self._on_stored(written)

    def _release_held(self, put_before: float) -> None:
        """Move held states put before `put_before` to the pending writes."""
        while self._held:
            key, (progress, put_at) = next(iter(self._held.items()))
            if put_at > put_before:
                return  # the rest are younger: they were put later
            del self._held[key]
            self._pending.append(progress)
