"""Waiting for an event, at most so long, in a task that may be asked to stop.

`asyncio.wait_for` on Python 3.11 loses a cancel that lands just as the wait it guards
ends (fixed in 3.12, where it is built on `asyncio.timeout`): the task goes on as if
never asked, and whoever awaits its end after cancelling it waits for ever. A run's
progress writer did exactly that in testing, after a run whose every message was done.
`asyncio.timeout` keeps the cancel.

Outside the layers (like `fastjson.py`): the engine's tasks and the web service's wait
the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import suppress


async def wait_until(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for `event` at most `timeout_s` seconds; True when it is set."""
    await at_most(event.wait(), timeout_s)
    return event.is_set()


async def at_most(awaitable: Awaitable[object], timeout_s: float) -> None:
    """Await `awaitable` for at most `timeout_s` seconds (then it is cancelled)."""
    with suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await awaitable
