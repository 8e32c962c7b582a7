"""Batching delivery progress into the store.

Writing each status change on its own would cost a transaction per message; batching a few
hundred per transaction makes persistence nearly free. Nothing is lost by the delay: a
delivery whose POST succeeded but whose progress was not yet flushed is still POSTING in the
store, and a resume reconciles it with Twilio instead of resending it.

The writes run on the event loop that sends, and a transaction holds the loop for its
whole length: every answer that arrives meanwhile waits, and 99 senders then go out again
in one burst. So, inside `async with`, a full buffer wakes the flushing task instead of
writing inline (a tracking round that finishes 2,000 messages no longer stalls the loop
for four transactions in a row), and that task writes `chunk` rows a transaction, letting
the loop run between transactions. The order of writes is the order of `put`.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from smslink.domain.models import Progress
from smslink.store import Store


class ProgressWriter:
    """Collects Progress records and writes them in batches, by size or by age."""

    def __init__(
        self,
        store: Store,
        *,
        max_items: int = 500,
        max_delay_s: float = 0.25,
        chunk: int = 250,
    ) -> None:
        self._store = store
        self._max_items = max_items
        self._max_delay_s = max_delay_s
        self._chunk = max(1, chunk)
        self._pending: list[Progress] = []
        self._task: asyncio.Task[None] | None = None
        self._full = asyncio.Event()

    def put(self, progress: Progress) -> None:
        self._pending.append(progress)
        if len(self._pending) >= self._max_items:
            if self._task is None or self._task.done():
                self.flush()  # no flushing task (outside `async with`): write now
            else:
                self._full.set()

    def flush(self) -> None:
        """Write everything pending now, in one transaction."""
        if self._pending:
            batch, self._pending = self._pending, []
            self._store.deliveries.save_progress(batch)

    async def __aenter__(self) -> ProgressWriter:
        self._task = asyncio.create_task(self._flush_periodically())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        self.flush()

    async def _flush_periodically(self) -> None:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._max_delay_s)
            self._full.clear()
            while self._pending:
                batch, self._pending = (
                    self._pending[: self._chunk],
                    self._pending[self._chunk :],
                )
                self._store.deliveries.save_progress(batch)
                await asyncio.sleep(0)  # let answers that came in meanwhile be handled
