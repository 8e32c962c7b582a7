"""Many requests, one store call: what arrives while a call runs goes into the next one.

Twilio posts three status callbacks a message; applied one by one, each cost a worker
thread hand-off and a transaction of its own. `BatchedCalls` hands every item submitted
while the previous call was running to a single call of a function that takes a list
(`Callbacks.receive_many`: one transaction), in a worker thread, and answers each caller
with its own result. An item that arrives on an idle service is applied at once: batching
adds no wait, only the wait for the call under way, which the item would have waited for
anyway (SQLite has one writer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")
R = TypeVar("R")

#: Most items in one call: a transaction holds SQLite's write lock while it runs.
MAX_BATCH = 200


@dataclass(frozen=True, slots=True)
class _Failed:
    """What one item's call raised."""

    error: Exception


class BatchedCalls(Generic[T, R]):
    """Submits items to `apply(items) -> results` (results in the items' order), one call
    at a time, each with everything submitted since the last began."""

    def __init__(self, apply: Callable[[Sequence[T]], Sequence[R]], max_batch: int = MAX_BATCH):
        self._apply = apply
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`item`'s result, once the call that took it returned; what the call for `item`
        alone raised, if that raised."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="smslink-batched-calls")
        return await future

    async def drained(self) -> None:
        """Returns once every item submitted so far has its answer (the service stops:
        the store is closed only after the last call into it)."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.wait([self._drainer])

    def _answers(self, items: list[T]) -> list[R | _Failed]:
        """Each item's result. When the call for all of them fails, each item is tried on
        its own, so only the one that fails gets the failure (a bad request never fails the
        callbacks beside it); but once two in a row fail with no success yet, the store
        itself is taken to be away and the rest get that failure without a try each (an
        outage would otherwise cost one timeout per item)."""
        try:
            return list(self._apply(items))
        except Exception as error:
            if len(items) == 1:
                return [_Failed(error)]
        answers: list[R | _Failed] = []
        failed_in_a_row = 0
        for index, item in enumerate(items):
            try:
                [result] = self._apply([item])
            except Exception as error:
                answers.append(_Failed(error))
                failed_in_a_row += 1
                if failed_in_a_row >= 2 and len(answers) == failed_in_a_row:
                    answers.extend(_Failed(error) for _ in items[index + 1 :])
                    break
            else:
                answers.append(result)
                failed_in_a_row = 0
        return answers

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                answers = await run_in_threadpool(self._answers, [item for item, _ in batch])
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # its request was given up
                        continue
                    if isinstance(answer, _Failed):
                        future.set_exception(answer.error)
                    else:
                        future.set_result(answer)
        finally:  # cancelled (the service stops): nobody waits for ever
            for _, future in (*batch, *self._pending):
                if not future.done():
                    future.cancel()
            self._pending.clear()
