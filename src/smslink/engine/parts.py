"""A run sent by workers: each part by one worker at a time, its tracking by one.

In one process a run's sender hands each accepted message to the tracker in memory
(engine/pipeline.py). Workers split that: a run's records are stored before its jobs are
queued, each part (domain/parts.py) is sent by whichever worker takes its job, under the
part's lease, and the messages Twilio accepted are handed over through the store (stage
TRACKING). One tracking job per run, under the run's own lease, polls them all: the
listing costs the same however many workers sent, and it ends the run when every part
is sent and every message final.

The rules of a run in one process hold per part: its POSTING deliveries are reconciled
with Twilio before anything of the part is sent again, a lease that may have passed to
another worker stops the sending before the next POST, and a halt (a connection Twilio
refuses, Twilio unreachable) stops the whole run, resumably.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from enum import Enum

from smslink.domain.connection_rules import stored_connection_problem
from smslink.domain.errors import say
from smslink.domain.models import (
    TWILIO_FINAL,
    Connection,
    Progress,
    Run,
    RunState,
    Stage,
    result_for_twilio_status,
)
from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted, lease_lost
from smslink.engine.ingest import check_audience_unchanged, read_audience
from smslink.engine.lease import RunLease
from smslink.engine.optouts import OptOuts
from smslink.engine.owned_sids import OwnedSids
from smslink.engine.pacing import Pacing
from smslink.engine.pipeline import STOPPED_ON_REQUEST
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.reconcile import Reconciler, settle_posting
from smslink.engine.run import unfinished_after_all
from smslink.engine.send import Sender, SendingShare
from smslink.engine.start import recipe_for, touchpoint_of
from smslink.engine.timings import Timings
from smslink.engine.track import Tracker
from smslink.store import LeaseTaken, Store
from smslink.twilio import Message, TwilioClient
from smslink.waiting import at_most, wait_until


class PartOutcome(Enum):
    """How a part's job ended."""

    SENT = "sent"  # nothing of the part is left to send
    STOPPED = "stopped"  # the run stopped (asked to, or halted): resuming queues it again
    GIVEN_BACK = "given back"  # this worker is shutting down: another one sends the rest


#: Why a worker stopped sending a part before it was done.
SHUTTING_DOWN = say("the worker is shutting down; another worker sends the rest")


class HandOff:
    """Takes what Twilio accepted for a part: stored as TRACKING for the run's tracking
    job (or DONE at once when Twilio already calls it final)."""

    def __init__(self, run_id: int, writer: ProgressWriter, counters: RunCounters) -> None:
        self._run_id = run_id
        self._writer = writer
        self._counters = counters

    def accept(self, seq: int, message: Message) -> None:
        final = message.status in TWILIO_FINAL
        result = result_for_twilio_status(message.status) if final else None
        self._writer.put(
            Progress(
                run_id=self._run_id,
                seq=seq,
                stage=Stage.DONE if final else Stage.TRACKING,
                status=result,
                twilio_status=message.status,
                message_sid=message.sid,
                error_code=message.error_code,
                error_message=message.error_message,
                updated_at=message.date_updated or datetime.now(UTC),
            )
        )
        if result is not None:
            self._counters.finished(result)


async def store_audience(
    store: Store, run_id: int, counters: RunCounters, *, timings: Timings
) -> list[int]:
    """Before a run's jobs are queued: read the rest of its audience into the store (in
    the process that has the file: workers elsewhere do not) and mark it sending, by
    workers; the parts that have something to send. Under the run's lease, so a process
    still sending it refuses (RunBusy).

    Raises InputError when the audience file changed since the run started (the run
    stays as it was), and AudienceError when it cannot be read on (the run is then
    interrupted, as on Ctrl-C: resuming reads on from where it stopped). Raises LeaseLost
    when another process took the run over while this one read it (paused past its
    lease): each batch, and each change of the run's state, is written only in the lease
    holder's name, so this process stores nothing beside its successor and leaves the
    run's state (and its queueing) to it. An error that ends the reading after such a
    takeover (Ctrl-C, the file) is raised as it is, the run's state left alone all the
    same.
    """
    async with RunLease(store, run_id, ttl_s=timings.lease_ttl_s) as lease:  # RunBusy
        run = store.runs.get_run(run_id)
        if run.state is RunState.COMPLETED:
            return []
        if not run.audience_complete:
            check_audience_unchanged(run)
            recipe = recipe_for(touchpoint_of(run), run.snapshot.region)
            try:
                await read_audience(
                    store,
                    run,
                    recipe,
                    counters,
                    lambda: None,
                    batch_size=timings.ingest_batch,
                    holder=lease.holder,
                )
            except LeaseTaken:  # the run is its successor's: so is its state
                raise lease.lost() from None
            except BaseException:  # Ctrl-C, a restart, a file that cannot be read on
                with suppress(LeaseLost):  # taken over meanwhile: the successor's state
                    lease.update_run(state=RunState.INTERRUPTED)
                raise
        # LeaseLost when taken over since the last batch: nothing to queue from here.
        lease.update_run(state=RunState.SENDING, error=None, queued=True, stop_request_cleared=True)
        return store.deliveries.parts_to_send(run_id)


async def send_part(
    store: Store,
    run_id: int,
    part: int,
    counters: RunCounters,
    *,
    timings: Timings,
    pacing: Pacing,
    owner: str,
    shutting_down: asyncio.Event,
    sharing: SendingShare | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PartOutcome:
    """Send what is left of one part of a run whose records are all stored.

    The senders of one worker's parts `sharing` its requests leave one free for tracking.
    Raises RunBusy when another worker holds the part (its job is tried again later),
    LeaseLost when the part may have passed to another worker meanwhile.
    """
    if not _still_to_send(store, run_id):
        return PartOutcome.STOPPED
    async with RunLease(store, run_id, ttl_s=timings.lease_ttl_s, part=part, owner=owner) as lease:
        run = store.runs.get_run(run_id)
        if not run.queued or not _still_to_send(store, run_id):
            return PartOutcome.STOPPED  # stopped, done, or a process took it back
        connection = store.catalogue.get_connection(run.connection)
        problem = stored_connection_problem(connection)
        if problem:
            stop_run(store, run_id, str(problem))
            return PartOutcome.STOPPED
        client = _client(connection, pacing, timings)
        owned = OwnedSids(store, run_id)
        writer = ProgressWriter(
            store, on_stored=owned.stored, holder=lease.holder, on_taken=lease.taken
        )
        async with client, writer:
            handoff = HandOff(run_id, writer, counters)
            reconciler = Reconciler(client, owned)
            sender = Sender(
                store=store,
                client=client,
                connection=connection,
                run_id=run_id,
                writer=writer,
                tracker=handoff,
                counters=counters,
                reconciler=reconciler,
                lease_held=lease.held,
                clock=clock,
                optouts=OptOuts(store, connection.sender, run_id=run_id, clock=clock),
                timings=timings,
                segment_rate=pacing.segment_rate(connection),
                part=part,
                sharing=sharing,
            )
            sender.audience_read()  # every record was stored before the jobs were queued
            watching = asyncio.create_task(
                _halt_when_asked(store, run_id, timings.stop_check_s, sender, shutting_down)
            )
            try:
                await settle_posting(
                    store,
                    reconciler,
                    run_id,
                    writer=writer,
                    tracker=handoff,
                    counters=counters,
                    timings=timings,
                    part=part,
                )
                await sender.run()
            except LeaseLost:
                raise
            except RunHalted as halt:
                writer.flush()
                if not lease.held():
                    raise lease_lost(run_id) from None
                if shutting_down.is_set() and str(halt) == str(SHUTTING_DOWN):
                    return PartOutcome.GIVEN_BACK
                if str(halt) != str(STOPPED_ON_REQUEST):
                    stop_run(store, run_id, str(halt))
                return PartOutcome.STOPPED
            finally:
                watching.cancel()
                with suppress(asyncio.CancelledError):
                    await watching
    return PartOutcome.SENT


async def track_sent(
    store: Store,
    run_id: int,
    counters: RunCounters,
    *,
    timings: Timings,
    pacing: Pacing,
    owner: str,
    shutting_down: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Run:
    """Track every message the run's parts hand over until all parts are sent and every
    message is final, then mark the run completed; return it as it stands.

    Returns early, the run unfinished, when the run is stopped or the worker shuts down
    (its job is then queued again). Raises RunBusy when another process holds the run.
    """
    async with RunLease(store, run_id, ttl_s=timings.lease_ttl_s, owner=owner) as lease:
        run = store.runs.get_run(run_id)
        if run.state is RunState.COMPLETED or not run.queued:
            return run  # done, or a process took it back from the workers
        connection = store.catalogue.get_connection(run.connection)
        client = _client(connection, pacing, timings)
        writer = ProgressWriter(store, holder=lease.holder, on_taken=lease.taken)
        async with client, writer:
            tracker = Tracker(
                client=client,
                connection=connection,
                run_id=run_id,
                writer=writer,
                counters=counters,
                since=run.created_at,
                lease_held=lease.held,
                store=store,
            )
            sent = asyncio.Event()
            tracking = asyncio.create_task(tracker.run(sent))
            try:
                ended = await _follow_parts(
                    store, run, tracker, sent, tracking, timings, shutting_down
                )
            finally:
                if not tracking.done():
                    tracking.cancel()
                with suppress(asyncio.CancelledError):
                    await tracking
        if not ended:
            if lease.held() and store.runs.stop_requested(run_id):
                _mark_stopped(store, lease)
            return store.runs.get_run(run_id)
        if not lease.held():
            raise lease_lost(run_id)
        totals = store.deliveries.totals(run_id)
        if totals.done == totals.total:
            lease.update_run(state=RunState.COMPLETED, finished_at=clock())
        else:  # every part sent and tracking over, yet records unfinished: say so, stop
            stop_run(store, run_id, str(unfinished_after_all(totals.total - totals.done)), lease)
    return store.runs.get_run(run_id)


async def _follow_parts(
    store: Store,
    run: Run,
    tracker: Tracker,
    sent: asyncio.Event,
    tracking: asyncio.Task[None],
    timings: Timings,
    shutting_down: asyncio.Event,
) -> bool:
    """Take on the messages the parts hand over, until every part is sent (then wait
    for tracking to end); False when the run was stopped or the worker shuts down."""
    taken: set[int] = set()
    while True:
        if store.runs.stop_requested(run.id) or shutting_down.is_set():
            return False
        # Unsent first: once none is (and every record is stored), every hand-over is in
        # the store and read below.
        unsent = store.deliveries.unsent(run.id) if not sent.is_set() else 0
        if not sent.is_set() and not store.runs.get_run(run.id).audience_complete:
            unsent = max(unsent, 1)
        for delivery in store.deliveries.iter_deliveries(
            run.id, stages=(Stage.TRACKING,), with_row=False
        ):
            if delivery.seq not in taken and delivery.message_sid:
                taken.add(delivery.seq)
                tracker.resume(
                    delivery.seq,
                    delivery.message_sid,
                    delivery.twilio_status or "queued",
                    polls=delivery.polls,
                    updated_at=delivery.updated_at,
                )
        if unsent == 0:
            sent.set()
        if tracking.done():
            tracking.result()  # LeaseLost, or a bug: raised here
            return True
        await at_most(asyncio.shield(tracking), timings.handoff_check_s)


def _client(connection: Connection, pacing: Pacing, timings: Timings) -> TwilioClient:
    """A Twilio client for `connection` paced by its account's (shared) window."""
    return TwilioClient.for_connection(
        connection, gate=pacing.window(connection), retry=timings.retry
    )


def stop_run(store: Store, run_id: int, reason: str, lease: RunLease | None = None) -> None:
    """Stop the whole run (resumably) because one part cannot go on: the other parts
    and the tracking job see the request within a second and stop too. Under the run's
    `lease` (the tracking job), in its name: LeaseLost once another process has taken
    the run over; a part's worker holds only its part's lease, which cannot fence it."""
    if lease is None:
        store.runs.update_run(run_id, state=RunState.STOPPED, error=reason)
    else:
        lease.update_run(state=RunState.STOPPED, error=reason)
    store.runs.request_stop(run_id, at=datetime.now(UTC))


def _mark_stopped(store: Store, lease: RunLease) -> None:
    """A stopped run keeps the reason a part gave; asked to stop, it says so (in the run
    lease's name: LeaseLost once another process has taken the run over)."""
    if store.runs.get_run(lease.run_id).state is not RunState.STOPPED:
        lease.update_run(state=RunState.STOPPED, error=str(STOPPED_ON_REQUEST))


def _still_to_send(store: Store, run_id: int) -> bool:
    """False when the run is completed or was asked to stop: its parts wait."""
    run = store.runs.get_run(run_id)
    return run.state is not RunState.COMPLETED and not store.runs.stop_requested(run_id)


async def _halt_when_asked(
    store: Store, run_id: int, every_s: float, sender: Sender, shutting_down: asyncio.Event
) -> None:
    """Halt the part's sender (requests in hand finish, the claimed rest is released)
    when the run is asked to stop or the worker shuts down."""
    while True:
        if shutting_down.is_set():
            sender.halt(str(SHUTTING_DOWN))
            return
        if store.runs.stop_requested(run_id):
            sender.halt(str(STOPPED_ON_REQUEST))
            return
        await wait_until(shutting_down, every_s)
