"""A webhook receiver on a loopback port, for the simulator's status callbacks and inbound
messages: it records every request and answers with the statuses it is given first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it."""

    path_qs: str
    content_type: str
    signature: str | None
    user_agent: str | None
    form: dict[str, str]
    at: float  # time.monotonic() on arrival
    token: str | None = None  # I-Twilio-Idempotency-Token


class Receiver:
    """A real aiohttp server on a loopback port, in its own thread, recording every POST.

    `answers` are the HTTP statuses of the first requests (then 200), to play a receiver
    that fails before it recovers.
    """

    def __init__(self, answers: Iterable[int] = ()) -> None:
        self._answers = list(answers)
        self._got: list[Received] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/twilio/status?run=7&kind=sms") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        got = Received(
            path_qs=request.path_qs,
            content_type=request.content_type,
            signature=request.headers.get("X-Twilio-Signature"),
            user_agent=request.headers.get("User-Agent"),
            form={name: str(value) for name, value in form.items()},
            at=time.monotonic(),
            token=request.headers.get("I-Twilio-Idempotency-Token"),
        )
        with self._changed:
            self._got.append(got)
            status = self._answers.pop(0) if self._answers else 200
            self._changed.notify_all()
        return web.Response(status=status)

    def wait(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The first `count` POSTs, waiting for them; fails if they do not come in time."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._got) >= count, timeout)
            assert arrived, f"expected {count} callbacks, got {self._got}"
            return list(self._got)

    def settle(self, quiet_s: float = 0.3) -> list[Received]:
        """Everything received once nothing more has arrived for `quiet_s`."""
        while True:
            before = len(self.got)
            time.sleep(quiet_s)
            if len(self.got) == before:
                return self.got

    @property
    def got(self) -> list[Received]:
        with self._changed:
            return list(self._got)
