"""Batching delivery progress into the store.

Writing each status change on its own would cost a transaction per message; batching a few
hundred per transaction makes persistence nearly free. Nothing is lost by the delay: a
delivery whose POST succeeded but whose progress was not yet flushed is still POSTING in the
store, and a resume reconciles it with Twilio instead of resending it.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from smslink.domain.models import Progress
from smslink.store import Store


class ProgressWriter:
    """Collects Progress records and writes them in batches, by size or by age."""

    def __init__(self, store: Store, *, max_items: int = 500, max_delay_s: float = 0.25) -> None:
        self._store = store
        self._max_items = max_items
        self._max_delay_s = max_delay_s
        self._pending: list[Progress] = []
        self._task: asyncio.Task[None] | None = None

    def put(self, progress: Progress) -> None:
        self._pending.append(progress)
        if len(self._pending) >= self._max_items:
            self.flush()

    def flush(self) -> None:
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
            await asyncio.sleep(self._max_delay_s)
            self.flush()
