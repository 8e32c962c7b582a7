"""RunLease (engine/lease.py): one process at a time works on a run. A second holder is
refused while the first holds the lease, and gets it once the first lets go; a holder that
was not renewed in time (its process paused) is replaced and knows it no longer holds the
run; a holder recorded for a process of this machine that is gone is replaced at once.
Real SQLite store; the "processes" are leases of this one, told apart by their owner ids."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from smslink.domain.errors import Busy
from smslink.domain.models import RunSnapshot
from smslink.engine.counters import RunCounters
from smslink.engine.lease import RunBusy, RunLease
from smslink.engine.run import execute_run
from smslink.store import NotFound, Store


def _run(store: Store) -> int:
    return store.runs.create_run(
        touchpoint="t",
        connection="c",
        input_path="in.csv",
        output_path="out.csv",
        snapshot=RunSnapshot("Hi", "phone"),
    ).id


def _dead_pid() -> int:
    """The pid of a process that has just exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _owner_like(template: str, *, host: str | None = None, pid: int | None = None) -> str:
    """An owner id in the lease module's own format (host:pid:machine:nonce), as another
    process would have written it."""
    this_host, this_pid, machine, _ = template.split(":")
    return f"{host or this_host}:{pid or this_pid}:{machine}:0ther0wn"


def test_a_second_holder_is_refused_while_the_first_holds_and_served_once_it_lets_go(
    store: Store,
) -> None:
    run_id = _run(store)
    seen: dict[str, object] = {}

    async def scenario() -> None:
        async with RunLease(store, run_id, ttl_s=60) as first:
            seen["first held"] = first.held()
            seen["holder while first holds"] = store.runs.run_lease(run_id)[0] == first.owner
            try:
                async with RunLease(store, run_id, ttl_s=60):
                    seen["second got in"] = True
            except RunBusy as refused:
                seen["refusal"] = refused
            seen["holder after refusal"] = store.runs.run_lease(run_id)[0] == first.owner
        seen["lease after first left"] = store.runs.run_lease(run_id)
        async with RunLease(store, run_id, ttl_s=60) as second:
            seen["second held"] = second.held()
            seen["holder now"] = store.runs.run_lease(run_id)[0] == second.owner

    asyncio.run(scenario())

    assert "second got in" not in seen
    refusal = seen["refusal"]
    assert isinstance(refusal, Busy)  # "try again later", whichever face shows it
    message = str(refusal)
    assert f"run {run_id} is being worked on by process {os.getpid()} on " in message
    assert socket.gethostname() in message
    assert "lease until" in message and "UTC" in message
    assert seen["first held"] and seen["holder while first holds"]
    assert seen["holder after refusal"]  # the refused attempt took nothing
    assert seen["lease after first left"] == (None, None)  # released on leaving
    assert seen["second held"] and seen["holder now"]
    assert store.runs.run_lease(run_id) == (None, None)


def test_a_holder_that_was_not_renewed_in_time_is_replaced_and_knows_it(store: Store) -> None:
    """A process paused past its lease (here: its event loop blocked, so no renewal ran)
    has lost the run: `held()` says so at once, another holder takes the run, the late
    renewal does not take it back, and leaving does not release the successor's lease."""
    run_id = _run(store)
    ttl_s = 0.3
    seen: dict[str, object] = {}

    async def scenario() -> None:
        successor = RunLease(store, run_id, ttl_s=60)
        async with RunLease(store, run_id, ttl_s=ttl_s) as paused:
            seen["held before the pause"] = paused.held()
            time.sleep(ttl_s + 0.05)  # blocks the loop: the renewal cannot run
            seen["held after the pause"] = paused.held()
            await successor.__aenter__()  # the lease expired: it may be taken
            await asyncio.sleep(ttl_s / 2)  # the paused holder's renewal runs, and fails
            seen["held after its renewal"] = paused.held()
            seen["successor held"] = successor.held()
        seen["holder after the paused one left"] = store.runs.run_lease(run_id)[0]
        seen["successor"] = successor.owner
        await successor.__aexit__(None, None, None)

    asyncio.run(scenario())

    assert seen["held before the pause"] is True
    assert seen["held after the pause"] is False  # not trusted past three quarters of it
    assert seen["held after its renewal"] is False  # another process holds it now
    assert seen["successor held"] is True
    assert seen["holder after the paused one left"] == seen["successor"]
    assert store.runs.run_lease(run_id) == (None, None)


def test_a_slow_look_up_while_taking_the_lease_is_not_trusted_past_its_expiry(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store answers the look-up of the current holder slowly (a loaded database):
    the expiry written is counted from before the look-up, so the trust must be too, or
    the holder believes itself alone while a successor may already hold the run."""
    run_id = _run(store)
    ttl_s, look_up_s = 0.6, 0.3
    looked_up = store.runs.run_lease

    def slow_look_up(run: int) -> tuple[str | None, datetime | None]:
        time.sleep(look_up_s)
        return looked_up(run)

    monkeypatch.setattr(store.runs, "run_lease", slow_look_up)
    seen: dict[str, object] = {}

    async def scenario() -> None:
        entered = time.monotonic()
        async with RunLease(store, run_id, ttl_s=ttl_s) as holder:
            seen["held at first"] = holder.held()  # 0.3 s of its 0.45 s of trust gone
            time.sleep(max(0.0, entered + ttl_s + 0.05 - time.monotonic()))  # no renewal
            seen["expired"] = looked_up(run_id)[1] < datetime.now(UTC)
            seen["held"] = holder.held()

    asyncio.run(scenario())

    assert seen["held at first"] is True
    assert seen["expired"] is True  # another process may take the run now
    assert seen["held"] is False


def test_a_lease_told_it_was_taken_is_not_held_any_more(store: Store) -> None:
    """A fenced write found another process's name on the lease: `held()` says no at once,
    long before the lease's own trust would lapse, and a later renewal cannot revive it."""
    run_id = _run(store)
    seen: dict[str, object] = {}

    async def scenario() -> None:
        async with RunLease(store, run_id, ttl_s=0.6) as lease:
            seen["held"] = lease.held()
            lease.taken()
            seen["after"] = lease.held()
            await asyncio.sleep(0.25)  # a renewal (every 0.1 s) would succeed here
            seen["later"] = lease.held()

    asyncio.run(scenario())
    assert seen == {"held": True, "after": False, "later": False}


def test_a_lease_renewed_in_time_outlives_its_ttl(store: Store) -> None:
    run_id = _run(store)
    ttl_s = 0.5
    seen: dict[str, object] = {}

    async def scenario() -> None:
        async with RunLease(store, run_id, ttl_s=ttl_s) as holder:
            await asyncio.sleep(ttl_s * 1.5)  # renewed every sixth of the ttl meanwhile
            try:
                async with RunLease(store, run_id, ttl_s=60):
                    seen["taken over"] = True
            except RunBusy:
                pass
            seen["held"] = holder.held()
            seen["holder is it"] = store.runs.run_lease(run_id)[0] == holder.owner

    asyncio.run(scenario())

    assert "taken over" not in seen
    assert seen["held"] is True and seen["holder is it"] is True


def test_a_holder_whose_process_on_this_machine_is_gone_is_replaced_at_once(
    store: Store,
) -> None:
    run_id = _run(store)
    template = RunLease(store, run_id).owner
    dead = _owner_like(template, pid=_dead_pid())
    now = datetime.now(UTC)
    until = now + timedelta(hours=1)  # far from expiring: only its death frees the run
    assert store.runs.acquire_run(run_id, dead, until=until, now=now, replacing=None) is None

    async def scenario() -> tuple[bool, str | None, str]:
        async with RunLease(store, run_id, ttl_s=60) as lease:
            return lease.held(), store.runs.run_lease(run_id)[0], lease.owner

    held, holder, owner = asyncio.run(scenario())

    assert held and holder == owner != dead


@pytest.mark.parametrize(
    "who",
    ["a live process of this machine", "a process of another machine"],
)
def test_a_holder_that_may_be_alive_is_trusted_until_its_lease_runs_out(
    store: Store, who: str
) -> None:
    run_id = _run(store)
    template = RunLease(store, run_id).owner
    if who == "a live process of this machine":
        holder = _owner_like(template, pid=os.getpid())  # this very process: alive
    else:
        holder = _owner_like(template, host="elsewhere.example", pid=_dead_pid())
    now = datetime.now(UTC)
    store.runs.acquire_run(run_id, holder, until=now + timedelta(hours=1), now=now, replacing=None)

    async def scenario() -> None:
        async with RunLease(store, run_id, ttl_s=60):
            pass

    with pytest.raises(RunBusy, match=f"process {holder.split(':')[1]} on {holder.split(':')[0]}"):
        asyncio.run(scenario())
    assert store.runs.run_lease(run_id)[0] == holder


def test_a_part_lease_is_one_holders_own_and_a_worker_still_holding_one_keeps_the_run(
    store: Store,
) -> None:
    """Parts of a run have leases of their own, on the run's rules; a process resuming a
    run the workers were sending is refused while a worker holds a part of it, and once
    none does it takes the run back (no worker takes up a part of it again)."""
    run_id = _run(store)
    store.runs.update_run(run_id, queued=True)

    async def scenario() -> None:
        async with RunLease(store, run_id, part=3, ttl_s=30) as first:
            with pytest.raises(RunBusy):
                async with RunLease(store, run_id, part=3, ttl_s=30):
                    pass
            async with RunLease(store, run_id, part=4, ttl_s=30):  # another part: free
                assert first.held()
            holders = store.runs.holders(run_id, now=datetime.now(UTC))
            assert holders == {first.owner: [3]}
            with pytest.raises(RunBusy, match="being sent by workers"):
                await execute_run(store, run_id, RunCounters())
            assert store.runs.get_run(run_id).queued
        with pytest.raises(NotFound):  # no connection "c": it stops there, taken back
            await execute_run(store, run_id, RunCounters())
        assert not store.runs.get_run(run_id).queued

    asyncio.run(scenario())
