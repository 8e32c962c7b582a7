"""A POST body that asks, as its bytes are written, whether it may still go out.

Why: a sender's permission to POST (its lease of the run, a halt) is asked before each
attempt, but between that answer and the bytes reaching the socket aiohttp gives the loop
away at least once (a pooled connection is awaited, the body is written by a task of its
own). A process stopped there (SIGSTOP, a suspended laptop, a loop stalled by a slow
callback) sends that request when it wakes, after another worker has taken the run over,
found no such message at Twilio and sent it itself: one recipient, two messages.

aiohttp writes a small body together with the headers in one synchronous call right after
`write_with_length` starts, so asking there leaves no suspension point between the answer
and the write: a request refused there sends nothing at all, not even its headers. That is
how aiohttp 3.14 writes (checked against its source; pyproject.toml asks for 3.14 or later,
and tests/e2e/test_workers.py freezes a worker at that very point to prove it); `write` is
guarded too, for a version that calls it instead.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import BytesPayload
from aiohttp.abc import AbstractStreamWriter


class GuardedBody(BytesPayload):
    """`value`, written only while `may_send()` says yes at the moment of writing;
    `withheld` is True when it said no (the request then fails as a lost connection,
    which the client reports as Withheld: nothing was sent)."""

    def __init__(self, value: bytes, may_send: Callable[[], bool]) -> None:
        super().__init__(value)
        self._may_send = may_send
        self.withheld = False

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        self._check()
        await super().write_with_length(writer, content_length)

    async def write(self, writer: AbstractStreamWriter) -> None:
        self._check()
        await super().write(writer)

    def _check(self) -> None:
        if not self._may_send():
            self.withheld = True
            raise RuntimeError("withheld by the caller: not sent")
