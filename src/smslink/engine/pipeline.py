"""The work of one run: reading the audience, sending and tracking, side by side.

Reading stores the audience a batch at a time and wakes the sender after each (a
journey's standing run has no audience: the journey API stores its records, and each
arrival wakes the sender instead); the sender claims stored deliveries and posts them;
the tracker polls what Twilio accepted until each is final. All three share one adaptive
window of requests (the account's concurrency limit counts them all), one progress
writer, and the run's lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime

from smslink.domain.errors import say
from smslink.domain.models import Connection, Run, Stage
from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted
from smslink.engine.ingest import read_audience
from smslink.engine.lease import RunLease
from smslink.engine.optouts import OptOuts
from smslink.engine.owned_sids import OwnedSids
from smslink.engine.pacing import ConnectionPacing, Pacing, Window
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.reconcile import Reconciler, settle_posting
from smslink.engine.send import Sender
from smslink.engine.start import recipe_for, touchpoint_of
from smslink.engine.timings import Timings
from smslink.engine.track import Tracker
from smslink.store import LeaseHolder, LeaseTaken, Store
from smslink.twilio import TwilioClient
from smslink.waiting import wait_until


async def send_and_track(
    store: Store,
    run: Run,
    connection: Connection,
    counters: RunCounters,
    *,
    clock: Callable[[], datetime],
    lease: RunLease,
    timings: Timings,
    arrivals: asyncio.Event | None = None,
    pacing: Pacing | None = None,
) -> None:
    """Read what is left of the audience, send what is not sent, track what is not final.

    A journey's run instead sends what arrives until it is sealed; `arrivals` is set by
    whoever stores its records (the store is also looked at every `intake_check_s`).
    With `pacing`, the account's window and the sender's segment rate are shared with the
    other runs sent on the same connection at the same time.

    Raises RunHalted when the run must stop (the sender's reason), LeaseLost when the run
    may have passed to another process.
    """
    pacing = pacing or ConnectionPacing()
    window = pacing.window(connection)
    client = TwilioClient.for_connection(connection, gate=window, retry=timings.retry)
    owned = OwnedSids(store, run.id)
    writer = ProgressWriter(
        store,
        hold_s=accepted_hold_s(connection),
        on_stored=owned.stored,
        holder=lease.holder,
        on_taken=lease.taken,
    )
    async with _reporting(window, counters), client, writer:
        tracker = Tracker(
            client=client,
            connection=connection,
            run_id=run.id,
            writer=writer,
            counters=counters,
            since=run.created_at,
            lease_held=lease.held,
            store=store,
        )
        counters.posted = _resume_tracking(store, run.id, tracker)
        reconciler = Reconciler(client, owned)
        await settle_posting(
            store,
            reconciler,
            run.id,
            writer=writer,
            tracker=tracker,
            counters=counters,
            timings=timings,
        )
        sender = Sender(
            store=store,
            client=client,
            connection=connection,
            run_id=run.id,
            writer=writer,
            tracker=tracker,
            counters=counters,
            reconciler=reconciler,
            lease_held=lease.held,
            clock=clock,
            optouts=OptOuts(store, connection.sender, run_id=run.id, clock=clock),
            timings=timings,
            segment_rate=pacing.segment_rate(connection),
        )
        if run.is_journey:
            reading = asyncio.create_task(
                _follow_intake(store, run, counters, sender, arrivals, timings.intake_check_s)
            )
        else:
            reading = asyncio.create_task(
                _read_rest(
                    store, run, counters, sender.work_added, timings.ingest_batch, lease.holder
                )
            )
        reading.add_done_callback(lambda task: _after_reading(task, sender, lease))
        sending_done = asyncio.Event()
        tracking = asyncio.create_task(tracker.run(sending_done))
        tracking.add_done_callback(lambda task: _after_tracking(task, sender))
        asked = asyncio.Event()
        watching = asyncio.create_task(
            _stop_when_asked(store, run.id, timings.stop_check_s, sender, tracking, asked)
        )
        try:
            await sender.run()  # RunHalted when halted, a stop request included
            sending_done.set()
            try:
                await tracking
            except asyncio.CancelledError:
                if not asked.is_set():
                    raise  # Ctrl-C, or the run's own task cancelled
                raise RunHalted(STOPPED_ON_REQUEST) from None
        finally:
            for task in (reading, tracking, watching):
                if not task.done():
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                elif not task.cancelled():
                    task.exception()  # seen: the sender's own error is the one reported


#: The longest a just-accepted message's state waits to be written with its next one (a
#: kill -9 in that time leaves it POSTING, which a resume reconciles with Twilio).
MAX_HOLD_S = 5.0


def accepted_hold_s(connection: Connection) -> float:
    """How long a message Twilio just accepted may wait to be written with its next state.

    A message that finishes quickly is final, at the latest, one and a half poll
    intervals on: held that long, its two states are written as one. Not with status
    callbacks, which look for the message by its sid in the store, nor with intervals so
    long that the first poll comes after the hold would end: no write would be saved,
    and holding would only leave more messages to reconcile after a crash.
    """
    if connection.callback_base_url:
        return 0.0
    hold_s = 1.5 * connection.poll_interval_ms / 1000 + 0.5
    return hold_s if hold_s <= MAX_HOLD_S else 0.0


#: Why a run stopped when someone asked it to (the Stop button, `runs stop`).
STOPPED_ON_REQUEST = say(
    "stopped on request; the messages sent so far are tracked again and the rest are sent "
    "when the run resumes"
)


async def _stop_when_asked(
    store: Store,
    run_id: int,
    every_s: float,
    sender: Sender,
    tracking: asyncio.Task[None],
    asked: asyncio.Event,
) -> None:
    """Look every `every_s` whether the run was asked to stop; then halt the sender (the
    requests in hand finish, nothing more is claimed) and end tracking, so the run stops
    resumably within about a second, whatever it was doing."""
    while not store.runs.stop_requested(run_id):
        await asyncio.sleep(every_s)
    asked.set()
    sender.halt(STOPPED_ON_REQUEST)
    tracking.cancel()


@asynccontextmanager
async def _reporting(window: Window, counters: RunCounters) -> AsyncIterator[None]:
    """Hand what the window learned during the run to the counters when the run ends,
    however it ends (a shared window counts other runs' 429s before and beside it)."""
    throttled_before = window.throttled
    try:
        yield
    finally:
        counters.throttled += window.throttled - throttled_before
        counters.settled_concurrency = window.window


async def _read_rest(
    store: Store,
    run: Run,
    counters: RunCounters,
    on_batch: Callable[[], None],
    batch_size: int,
    holder: LeaseHolder,
) -> None:
    if not run.audience_complete:
        recipe = recipe_for(touchpoint_of(run), run.snapshot.region)
        await read_audience(
            store, run, recipe, counters, on_batch, batch_size=batch_size, holder=holder
        )


async def _follow_intake(
    store: Store,
    run: Run,
    counters: RunCounters,
    sender: Sender,
    arrivals: asyncio.Event | None,
    every_s: float,
) -> None:
    """Wake the sender whenever records arrive (or every `every_s`, for records another
    process stored), until the journey run is sealed: then sending ends once it has sent
    what it holds. Keeps the counters up with what arrived, the records settled on
    arrival (a bad phone, an opt-out) among them."""
    arrivals = arrivals or asyncio.Event()
    seen = run.total  # counted by the run's start
    while True:
        now = store.runs.get_run(run.id)
        if now.total > seen:
            for status, count in store.deliveries.settled_on_arrival(
                run.id, seen, now.total
            ).items():
                counters.finished(status, count)
            seen = counters.ingested = now.total
            sender.work_added()
        if now.audience_complete:
            sender.audience_read()
            return
        await wait_until(arrivals, every_s)
        arrivals.clear()


def _after_reading(task: asyncio.Task[None], sender: Sender, lease: RunLease) -> None:
    """Let the sender finish once the audience is read, or stop it if it cannot be; once
    another process has taken the run over (a batch refused in its name), this one stops
    as on any lost lease, and its successor reads on."""
    if task.cancelled():
        return
    error = task.exception()
    if error is None:
        sender.audience_read()
    elif isinstance(error, LeaseTaken):
        lease.taken()
        sender.lose_lease()
    else:
        sender.halt(
            f"the audience could not be read to its end: {error}. The records stored before "
            "that point were sent or stay to be sent when the run resumes; the rest were "
            "not read. Resuming needs the file exactly as it was when the run started"
        )


def _after_tracking(task: asyncio.Task[None], sender: Sender) -> None:
    """Stop sending once tracking has failed (its lease looked lost for a while, the
    store failed it): nothing more goes out that nobody would track. Otherwise a journey,
    which sends until it is sealed, could send for days with no status, no result and no
    event for any of it. What was sent stays TRACKING, and a resume tracks it again."""
    if task.cancelled() or task.exception() is None:
        return
    if isinstance(task.exception(), LeaseLost):
        sender.lose_lease()  # the run may be another process's: nothing to report on it
        return
    sender.halt(
        f"tracking stopped ({task.exception()}); nothing more was sent. The messages sent "
        "so far are tracked again, and the rest sent, when the run resumes"
    )


def _resume_tracking(store: Store, run_id: int, tracker: Tracker) -> int:
    """Put TRACKING deliveries back under tracking; return how many messages the run has
    sent so far (the deliveries that hold a sid)."""
    sent = 0
    for delivery in store.deliveries.iter_deliveries(
        run_id, stages=(Stage.TRACKING, Stage.DONE), with_row=False
    ):
        if delivery.message_sid:
            sent += 1
            if delivery.stage is Stage.TRACKING:
                tracker.resume(
                    delivery.seq,
                    delivery.message_sid,
                    delivery.twilio_status or "queued",
                    polls=delivery.polls,
                    updated_at=delivery.updated_at,
                )
    return sent
