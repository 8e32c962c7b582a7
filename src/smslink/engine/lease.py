"""One worker per run: a lease in the store, renewed while the run is being worked on.

Without it, `runs resume` on a run that is still sending elsewhere would take the other
process's in-flight POSTs for crash leftovers, find nothing at Twilio yet, and send them a
second time. The holder checks, before every POST, that its lease is still surely its own:
a process that was paused (Ctrl-Z, a suspended laptop) past its lease may have been
replaced, and must stop rather than send what its successor is sending.

A holder whose process is gone (kill -9, a crash) is replaced at once when it ran on this
machine in this PID namespace (same boot, same namespace, pid not alive); any other holder
is trusted until its lease expires.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smslink.domain.errors import Busy, say
from smslink.engine.errors import LeaseLost, lease_lost
from smslink.store import LeaseHolder, LeaseTaken, Store


def _clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (Linux's
    CLOCK_BOOTTIME; time.monotonic stops during suspend, which would let a laptop that
    slept past its lease believe it still holds it)."""
    return time.clock_gettime(_CLOCK)


_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class RunBusy(Busy):
    """Another live process is working on the run."""


def _machine_id() -> str:
    """This boot of this machine and this PID namespace: where a pid means one process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "unknown"
    return f"{boot}-{namespace}"


def owner_id() -> str:
    """A name for a lease holder: host, pid, where that pid means one process, and a
    random tail (a pid is reused after the process is gone)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_machine_id()}:{uuid.uuid4().hex[:8]}"


def _dead_local_holder(holder: str | None) -> str | None:
    """`holder` when it names a process of this machine's PID namespace that is gone."""
    if not holder:
        return None
    parts = holder.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    host, pid, machine, _ = parts
    if host != socket.gethostname() or machine == "unknown" or machine != _machine_id():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return holder
    except PermissionError:
        return None  # alive, owned by another user
    return None


class RunLease:
    """`async with RunLease(store, run_id, ttl_s=...) as lease:` holds the run for this
    process; `lease.held()` says whether it surely still does. The lease lasts `ttl_s`
    without renewal, is renewed every sixth of that, and is trusted for three quarters.

    With `part`, the lease is of that part of the run only (a worker sending it, see
    domain/parts.py), on the same rules; `owner` names the process (one per worker) so
    the holders of a run's parts can be told apart by process.
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        *,
        ttl_s: float = 60.0,
        part: int | None = None,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._part = part
        self.owner = owner or owner_id()
        self._renewal: asyncio.Task[None] | None = None
        self._held_until = 0.0  # _clock() up to which no one else can hold it
        self._ttl = timedelta(seconds=ttl_s)
        self._trust_s = self._ttl.total_seconds() * 0.75  # how long a renewal is trusted

    @property
    def run_id(self) -> int:
        return self._run_id

    @property
    def holder(self) -> LeaseHolder:
        """This lease as the store's writes in its name are fenced by."""
        return LeaseHolder(self._run_id, self.owner, self._part)

    def held(self) -> bool:
        """True while the lease cannot have passed to another process."""
        return _clock() < self._held_until

    def update_run(self, **changes: Any) -> None:
        """Change the run's row (RunStore.update_run's fields) in this lease's name: once
        another process has taken the run over, nothing is changed, the lease is marked
        taken and LeaseLost raised, as the run's state is then its successor's to write.
        Only a run's lease, not a part's, fences the run's row."""
        try:
            self._store.runs.update_run(self._run_id, holder=self.holder, **changes)
        except LeaseTaken:
            raise self.lost() from None

    def lost(self) -> LeaseLost:
        """After the store refused a write in this lease's name (LeaseTaken): the lease
        is marked taken, and the LeaseLost to raise is returned."""
        self.taken()
        return lease_lost(self._run_id)

    def taken(self) -> None:
        """The store showed the lease in another process's hands (a fenced write was
        refused): `held()` says no from now on, so nothing more is sent; renewing stops,
        so nothing brings it back."""
        self._held_until = 0.0
        if self._renewal is not None:
            self._renewal.cancel()

    async def __aenter__(self) -> RunLease:
        # Trusted from before the lease's expiry is computed: a slow look-up in between
        # (a loaded database) then shortens the trust, never stretches it past the expiry.
        started = _clock()
        now = datetime.now(UTC)
        runs, part = self._store.runs, self._part
        if part is None:
            holder, expires = runs.run_lease(self._run_id)
        else:
            holder, expires = runs.part_lease(self._run_id, part)
        until, replacing = now + self._ttl, _dead_local_holder(holder)
        if part is None:
            refused = runs.acquire_run(
                self._run_id, self.owner, until=until, now=now, replacing=replacing
            )
        else:
            refused = runs.acquire_part(
                self._run_id, part, self.owner, until=until, now=now, replacing=replacing
            )
        if refused is not None:
            host, _, rest = refused.partition(":")
            pid = rest.partition(":")[0]
            if expires:
                raise RunBusy(
                    say(
                        "run %(run)s is being worked on by process %(pid)s on %(host)s (lease "
                        "until %(until)s UTC): wait for it to finish, or stop it, before "
                        "resuming",
                        run=str(self._run_id),
                        pid=pid,
                        host=host,
                        until=f"{expires:%H:%M:%S}",
                    )
                )
            raise RunBusy(
                say(
                    "run %(run)s is being worked on by process %(pid)s on %(host)s: wait for "
                    "it to finish, or stop it, before resuming",
                    run=str(self._run_id),
                    pid=pid,
                    host=host,
                )
            )
        self._held_until = started + self._trust_s
        self._renewal = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewal
        if self._part is None:
            self._store.runs.release_run(self._run_id, self.owner)
        else:
            self._store.runs.release_part(self._run_id, self._part, self.owner)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl.total_seconds() / 6)
            started = _clock()
            try:
                until = datetime.now(UTC) + self._ttl
                if self._part is None:
                    renewed = self._store.runs.renew_run(self._run_id, self.owner, until=until)
                else:
                    renewed = self._store.runs.renew_part(
                        self._run_id, self._part, self.owner, until=until
                    )
            except Exception:  # database unreachable: held() lapses with the last renewal
                continue
            if not renewed:  # another process holds it now
                self._held_until = 0.0
                return
            self._held_until = started + self._trust_s
