"""The run lifecycle: create a run, then read, send and track it to its results.

`start_run` and `execute_run` are the only entry points the CLI (and later the web layer)
need. `execute_run` picks up a run in any state the store can hold: the audience is read on
from the first record not stored, TRACKING deliveries are tracked again, POSTING ones
reconciled with Twilio, PENDING ones sent. So "send" and "resume after a crash" are the
same code path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smslink.audience.readers import (
    JSONL_SUFFIXES,
    AudienceError,
    check_decodable,
    open_audience,
)
from smslink.audience.writers import check_results_path
from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted, lease_lost
from smslink.engine.ingest import read_audience
from smslink.engine.lease import RunLease
from smslink.engine.optouts import OptOuts
from smslink.engine.pacing import AdaptiveWindow
from smslink.engine.prepare import Recipe
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.reconcile import Reconciler, settle_posting
from smslink.engine.results import write_results
from smslink.engine.send import Sender
from smslink.engine.track import Tracker
from smslink.models import (
    Connection,
    Run,
    RunState,
    Stage,
    Touchpoint,
)
from smslink.store import Store
from smslink.template import TemplateError
from smslink.twilio import TwilioClient


class InputError(Exception):
    """The audience or touchpoint cannot be used as it is; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class RunRequest:
    touchpoint: str
    input_path: Path
    output_path: Path
    encoding: str | None = None


def start_run(store: Store, request: RunRequest) -> int:
    """Create a run for an audience and return its id; `execute_run` then does the work.

    Checks the touchpoint, the audience's header and the results path first and raises
    InputError or AudienceError, with nothing stored, when one cannot be used.
    """
    touchpoint = store.get_touchpoint(request.touchpoint)
    connection = store.get_connection(touchpoint.connection)
    recipe = _recipe(touchpoint, connection.region)
    check_results_path(request.output_path)
    with open_audience(request.input_path, request.encoding) as reader:
        check_decodable(request.input_path, request.encoding)
        missing = recipe.missing_columns(list(reader.columns))
        if missing and not _is_jsonl(request.input_path):
            raise InputError(
                f"{request.input_path.name} has no column "
                + ", ".join(f"'{c}'" for c in missing)
                + f" (touchpoint '{touchpoint.name}' maps to it); its columns are: "
                + ", ".join(reader.columns)
            )
    run = store.create_run(
        touchpoint=touchpoint.name,
        connection=connection.name,
        input_path=str(request.input_path.resolve()),
        output_path=str(request.output_path.resolve()),
        settings=_snapshot(touchpoint, connection, request.encoding),
    )
    return run.id


async def execute_run(
    store: Store,
    run_id: int,
    counters: RunCounters,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Run:
    """Read, send and track everything the run still has to do, then write its results.

    Raises RunHalted (run STOPPED) when the connection is refused or the audience cannot be
    read on, RunBusy when another process is working on the run; on cancellation (Ctrl-C)
    the run is marked INTERRUPTED and the cancellation propagates.
    """
    if store.get_run(run_id).state is RunState.COMPLETED:
        return store.get_run(run_id)
    async with RunLease(store, run_id) as lease:
        run = store.get_run(run_id)  # as the previous holder left it
        if run.state is RunState.COMPLETED:
            return run
        connection = store.get_connection(run.connection)
        store.update_run(run_id, state=RunState.SENDING, error=None)
        _count_done(store, run, counters)
        try:
            await _send_and_track(store, run, connection, counters, clock, lease.held)
        except LeaseLost:
            raise  # the run's new owner keeps its state: write nothing
        except RunHalted as halt:
            if lease.held():
                store.update_run(run_id, state=RunState.STOPPED, error=str(halt))
            raise
        except BaseException:
            if lease.held():
                store.update_run(run_id, state=RunState.INTERRUPTED)
            raise
        if not lease.held():
            raise lease_lost(run_id)
        unfinished = store.totals(run_id)
        if unfinished.done != unfinished.total:
            reason = (
                f"{unfinished.total - unfinished.done} deliveries are not finished although "
                "sending and tracking ended (a bug): resume the run to finish them"
            )
            store.update_run(run_id, state=RunState.STOPPED, error=reason)
            raise RunHalted(reason)
        try:
            write_results(store, store.get_run(run_id))
        except (AudienceError, OSError) as error:
            reason = f"every message is done, but the results file could not be written: {error}"
            store.update_run(run_id, state=RunState.STOPPED, error=reason)
            raise RunHalted(reason) from error
        store.update_run(run_id, state=RunState.COMPLETED, finished_at=clock())
    return store.get_run(run_id)


async def _send_and_track(
    store: Store,
    run: Run,
    connection: Connection,
    counters: RunCounters,
    clock: Callable[[], datetime],
    lease_held: Callable[[], bool],
) -> None:
    """Reading the audience, sending and tracking run side by side until all is done."""
    # Every request, polls and look-ups included, goes through one adaptive window: the
    # account's concurrency limit counts them all.
    window = AdaptiveWindow(connection.concurrency)
    client = TwilioClient.for_connection(connection, gate=window)
    async with _reporting(window, counters), client, ProgressWriter(store) as writer:
        tracker = Tracker(
            client=client,
            connection=connection,
            run_id=run.id,
            writer=writer,
            counters=counters,
            since=run.created_at,
            lease_held=lease_held,
        )
        reconciler = Reconciler(client, _resume_tracking(store, run.id, tracker))
        await settle_posting(
            store, reconciler, run.id, writer=writer, tracker=tracker, counters=counters
        )
        counters.posted = len(reconciler.known_sids)
        sender = Sender(
            store=store,
            client=client,
            connection=connection,
            run_id=run.id,
            writer=writer,
            tracker=tracker,
            counters=counters,
            reconciler=reconciler,
            lease_held=lease_held,
            clock=clock,
            optouts=OptOuts(store, connection.sender, run_id=run.id, clock=clock),
        )
        reading = asyncio.create_task(_read_rest(store, run, counters, sender.work_added))
        reading.add_done_callback(lambda task: _after_reading(task, sender))
        sending_done = asyncio.Event()
        tracking = asyncio.create_task(tracker.run(sending_done))
        try:
            await sender.run()
            sending_done.set()
            await tracking
        finally:
            for task in (reading, tracking):
                if not task.done():
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                elif not task.cancelled():
                    task.exception()  # seen: the sender's own error is the one reported


@asynccontextmanager
async def _reporting(window: AdaptiveWindow, counters: RunCounters) -> AsyncIterator[None]:
    """Hand what the window learned to the counters when the run ends, however it ends."""
    try:
        yield
    finally:
        counters.throttled += window.throttled
        counters.settled_concurrency = window.window


async def _read_rest(
    store: Store, run: Run, counters: RunCounters, on_batch: Callable[[], None]
) -> None:
    if not run.audience_complete:
        recipe = _recipe(_touchpoint_of(run), str(run.settings.get("region", "US")))
        await read_audience(store, run, recipe, counters, on_batch)


def _after_reading(task: asyncio.Task[None], sender: Sender) -> None:
    """Let the sender finish once the audience is read, or stop it if it cannot be."""
    if task.cancelled():
        return
    error = task.exception()
    if error is None:
        sender.audience_read()
    else:
        sender.halt(
            f"the audience cannot be read on: {error}. The records before that point are "
            "being sent; fix the file without changing or reordering them, then resume"
        )


def _resume_tracking(store: Store, run_id: int, tracker: Tracker) -> set[str]:
    """Put TRACKING deliveries back under tracking; return every sid the run owns."""
    known: set[str] = set()
    for delivery in store.iter_deliveries(
        run_id, stages=(Stage.TRACKING, Stage.DONE), with_row=False
    ):
        if delivery.message_sid:
            known.add(delivery.message_sid)
            if delivery.stage is Stage.TRACKING:
                tracker.resume(
                    delivery.seq,
                    delivery.message_sid,
                    delivery.twilio_status or "queued",
                    polls=delivery.polls,
                    updated_at=delivery.updated_at,
                )
    return known


def _count_done(store: Store, run: Run, counters: RunCounters) -> None:
    totals = store.totals(run.id)
    counters.ingested = totals.total
    counters.total = totals.total if run.audience_complete else 0
    counters.done = totals.done
    counters.by_status.clear()
    counters.by_status.update(totals.by_status)


def _touchpoint_of(run: Run) -> Touchpoint:
    """The touchpoint as it was when the run started (its snapshot in the run)."""
    settings = run.settings
    return Touchpoint(
        name=run.touchpoint,
        connection=run.connection,
        message=str(settings["message"]),
        phone_column=str(settings["phone_column"]),
        mapping=dict(settings.get("mapping", {})),  # type: ignore[call-overload]
    )


def _recipe(touchpoint: Touchpoint, region: str) -> Recipe:
    try:
        return Recipe.from_touchpoint(touchpoint, region)
    except TemplateError as error:
        raise InputError(f"touchpoint '{touchpoint.name}': {error}") from error


def _snapshot(touchpoint: Touchpoint, connection: Connection, encoding: str | None) -> dict:
    """What the run must keep using even if the touchpoint is edited before a resume."""
    return {
        "message": touchpoint.message,
        "phone_column": touchpoint.phone_column,
        "mapping": dict(touchpoint.mapping),
        "region": connection.region,
        "encoding": encoding,
    }


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES
