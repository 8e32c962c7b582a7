"""The run lifecycle: take the run's lease, do the work, and end in one clear state.

`execute_run` picks up a run in any state the store can hold: the audience is read on
from the first record not stored, TRACKING deliveries are tracked again, POSTING ones
reconciled with Twilio, PENDING ones sent. So "send" and "resume after a crash" are the
same code path. It ends `completed` (every delivery final, results written), `stopped`
(resumable: the reason and its remedy say what to fix) or `interrupted` (Ctrl-C, a crash).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from smslink.audience.readers import AudienceError
from smslink.domain.connection_rules import stored_connection_problem
from smslink.domain.errors import Action, Remedy, Sentence, say
from smslink.domain.models import Run, RunState
from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted, lease_lost
from smslink.engine.ingest import check_audience_unchanged
from smslink.engine.lease import RunBusy, RunLease
from smslink.engine.pacing import Pacing
from smslink.engine.pipeline import send_and_track
from smslink.engine.results import ResultsAhead, write_results
from smslink.engine.timings import Timings
from smslink.store import Store


async def execute_run(
    store: Store,
    run_id: int,
    counters: RunCounters,
    *,
    timings: Timings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    arrivals: asyncio.Event | None = None,
    pacing: Pacing | None = None,
    by_worker: bool = False,
) -> Run:
    """Read, send and track everything the run still has to do, then write its results.

    A journey's standing run sends what arrives (`arrivals` is set as records are stored)
    until it is sealed, and has no results file: its results are its events. Runs given
    the same `pacing` share each connection's request window and segment rate. A run the
    workers were sending is taken back from them (refused while one still holds a part),
    unless this is a worker sending a journey (`by_worker`).

    Raises RunHalted (run STOPPED) when the connection is refused, Twilio cannot be asked,
    the audience cannot be read on or the results cannot be written; RunBusy when another
    process is working on the run; InputError when its audience file changed. On
    cancellation (Ctrl-C) the run is marked INTERRUPTED and the cancellation propagates.
    """
    timings = timings or Timings()
    if store.runs.get_run(run_id).state is RunState.COMPLETED:
        return store.runs.get_run(run_id)
    async with RunLease(store, run_id, ttl_s=timings.lease_ttl_s) as lease:
        run = store.runs.get_run(run_id)  # as the previous holder left it
        if run.state is RunState.COMPLETED:
            return run
        if run.queued and not by_worker:
            _take_back_from_workers(store, run_id, lease.owner)
        connection = store.catalogue.get_connection(run.connection)
        problem = stored_connection_problem(connection)
        if problem:
            _stop(lease, RunHalted(problem, remedy=_fix_connection(run)))
        if not run.audience_complete:
            check_audience_unchanged(run)  # InputError: the run stays as it was
        # Resuming is asking it to go on: an earlier request to stop is forgotten.
        lease.update_run(state=RunState.SENDING, error=None, stop_request_cleared=True)
        _count_done(store, run, counters)
        ahead = None if run.is_journey else ResultsAhead(store, run_id)
        try:
            sending = send_and_track(
                store,
                run,
                connection,
                counters,
                clock=clock,
                lease=lease,
                timings=timings,
                arrivals=arrivals,
                pacing=pacing,
            )
            await _writing_results_ahead(ahead, sending)
        except LeaseLost:
            raise  # the run's new owner keeps its state: write nothing
        except RunHalted as halt:
            if lease.held():  # LeaseLost instead once taken over: the successor's state
                lease.update_run(state=RunState.STOPPED, error=str(halt))
            if halt.remedy is None:
                halt.remedy = Remedy(Action.RESUME_RUN, {"run_id": run_id})
            raise
        except BaseException:
            if lease.held():
                with suppress(LeaseLost):  # taken over meanwhile: the successor's state
                    lease.update_run(state=RunState.INTERRUPTED)
            raise
        try:
            _finish(store, run, clock, lease, ahead)
        finally:
            if ahead is not None:
                ahead.abort()  # nothing once the file is in place
    return store.runs.get_run(run_id)


def _finish(
    store: Store,
    run: Run,
    clock: Callable[[], datetime],
    lease: RunLease,
    ahead: ResultsAhead | None,
) -> None:
    """After sending and tracking: check every delivery is done, write the results file
    and mark the run COMPLETED; raises RunHalted (run STOPPED) when it cannot, LeaseLost
    when another process took the run over meanwhile (the state is then its to write)."""
    run_id = run.id
    if not lease.held():
        raise lease_lost(run_id)
    unfinished = store.deliveries.totals(run_id)
    if unfinished.done != unfinished.total:
        _stop(lease, RunHalted(unfinished_after_all(unfinished.total - unfinished.done)))
    try:
        if not run.is_journey:
            write_results(store, store.runs.get_run(run_id), ahead)
    except (AudienceError, OSError) as error:
        _stop(
            lease,
            RunHalted(
                say(
                    "every message is done, but the results file could not be written: "
                    "%(error)s; write them to another file (the results stay in the store)",
                    error=_reason(error),
                ),
                remedy=Remedy(Action.RESUME_RUN, {"run_id": run_id, "output": "OTHER-FILE"}),
            ),
            cause=error,
        )
    lease.update_run(state=RunState.COMPLETED, finished_at=clock())


async def _writing_results_ahead(
    ahead: ResultsAhead | None, sending: Coroutine[Any, Any, None]
) -> None:
    """Await `sending` while `ahead` writes the finished rows to the results file; the
    head start is dropped unless sending ends normally."""
    if ahead is None:
        await sending
        return
    following = asyncio.create_task(ahead.follow())
    try:
        await sending
    except BaseException:
        ahead.abort()
        raise
    finally:
        following.cancel()
        await asyncio.wait([following])  # raises nothing of its own: a Ctrl-C still counts


def unfinished_after_all(count: int) -> Sentence:
    """Why a run stops when sending and tracking ended with records not final (a bug)."""
    return say(
        "%(count)s deliveries are not finished although sending and tracking ended (a bug): "
        "resume the run to finish them",
        count=count,
    )


def _take_back_from_workers(store: Store, run_id: int, owner: str) -> None:
    """A run the workers were sending is finished by this process (`owner`) from now on:
    refused while a worker still holds a part of it (RunBusy), else its lapsed part leases
    pass to this process (their old holders, paused workers, can no longer renew them or
    write in their name) and it is no longer queued, so no worker takes a part of it
    again (engine/parts.py checks, under each part's lease). One transaction decides."""
    working = store.runs.take_back_parts(run_id, owner, now=datetime.now(UTC))
    if working:
        host, _, rest = working[0].partition(":")
        raise RunBusy(
            say(
                "run %(run)s is being sent by workers (process %(pid)s on %(host)s, and "
                "%(more)s more): stop it first, or let the workers finish it",
                run=str(run_id),
                pid=rest.partition(":")[0],
                host=host,
                more=str(len(working) - 1),
            )
        )


def request_stop(
    store: Store, run_id: int, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Run:
    """Ask the process sending the run to stop it (resumably) within about a second.

    A run that is not being sent is left as it is: created, stopped, interrupted and
    completed runs have nothing to stop, and the request would only linger.
    """
    run = store.runs.get_run(run_id)
    if run.state is RunState.SENDING:
        store.runs.request_stop(run_id, at=clock())
    return run


def _stop(lease: RunLease, halt: RunHalted, cause: BaseException | None = None) -> None:
    """Mark the run STOPPED with the reason in the lease's name, and raise it (resume is
    the default remedy); LeaseLost instead once another process has taken the run over."""
    lease.update_run(state=RunState.STOPPED, error=str(halt))
    if halt.remedy is None:
        halt.remedy = Remedy(Action.RESUME_RUN, {"run_id": lease.run_id})
    raise halt from cause


def _reason(error: BaseException) -> object:
    """What an error says: its Sentence when it has one (a page translates it), else its
    text."""
    first = error.args[0] if len(error.args) == 1 else None
    return first if isinstance(first, str) else str(error)


def _fix_connection(run: Run) -> Remedy:
    return Remedy(Action.UPDATE_CONNECTION, {"connection": run.connection})


def _count_done(store: Store, run: Run, counters: RunCounters) -> None:
    totals = store.deliveries.totals(run.id)
    counters.ingested = totals.total
    counters.total = totals.total if run.audience_complete else 0
    counters.done = totals.done
    counters.by_status.clear()
    counters.by_status.update(totals.by_status)
