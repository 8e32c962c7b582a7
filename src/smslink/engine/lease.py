"""One worker per run: a lease in the store, renewed while the run is being worked on.

Without it, `runs resume` on a run that is still sending elsewhere would take the other
process's in-flight POSTs for crash leftovers, find nothing at Twilio yet, and send them a
second time. A holder on this host whose process is gone (kill -9, a crash) is replaced at
once; a holder on another host is trusted until its lease expires.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from smslink.store import Store

#: How long a lease lasts without renewal, and how often it is renewed.
LEASE_TTL = timedelta(seconds=60)
RENEW_EVERY_S = 10.0


class RunBusy(Exception):
    """Another live process is working on the run."""


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_local_holder(holder: str | None) -> str | None:
    """`holder` when it names a process on this host that no longer exists."""
    if not holder:
        return None
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return holder
    except PermissionError:
        return None  # alive, owned by another user
    return None


class RunLease:
    """`async with RunLease(store, run_id):` holds the run for this process."""

    def __init__(self, store: Store, run_id: int) -> None:
        self._store = store
        self._run_id = run_id
        self.owner = _owner_id()
        self._renewal: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunLease:
        now = datetime.now(UTC)
        holder, expires = self._store.run_lease(self._run_id)
        refused = self._store.acquire_run(
            self._run_id,
            self.owner,
            until=now + LEASE_TTL,
            now=now,
            replacing=_dead_local_holder(holder),
        )
        if refused is not None:
            host, _, rest = refused.partition(":")
            raise RunBusy(
                f"run {self._run_id} is being worked on by process {rest.partition(':')[0]} "
                f"on {host} (lease until {expires:%H:%M:%S} UTC): wait for it to finish, or "
                "stop it, before resuming"
                if expires
                else f"run {self._run_id} is being worked on by {refused}"
            )
        self._renewal = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewal
        self._store.release_run(self._run_id, self.owner)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            self._store.renew_run(self._run_id, self.owner, until=datetime.now(UTC) + LEASE_TTL)
