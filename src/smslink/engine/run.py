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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smslink.audience.readers import (
    JSONL_SUFFIXES,
    AudienceError,
    AudienceScan,
    file_digest,
    scan_audience,
)
from smslink.audience.writers import check_results_path
from smslink.base_url import check_base_url
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
from smslink.store import RunConflict, Store
from smslink.template import TemplateError
from smslink.twilio import TwilioClient


class InputError(Exception):
    """The audience or touchpoint cannot be used as it is; the message says what to fix."""


class RepeatedSend(InputError):
    """The same touchpoint went to an audience with the same content a moment ago, or is
    still going to it: a second send would give every recipient the message twice."""

    def __init__(self, message: str, earlier: Run) -> None:
        super().__init__(message)
        self.earlier = earlier


#: A send of a touchpoint to an audience whose content (bytes) equals that of an earlier
#: send of it is refused while the earlier run is unfinished, or within this window after it
#: started, unless the caller asks for it again explicitly: the mistakes it catches (the
#: same command run twice, two colleagues sending the same file) happen within hours, while
#: a deliberate repeat (a reminder next week) is well outside it.
REPEAT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RunRequest:
    touchpoint: str
    input_path: Path
    output_path: Path
    encoding: str | None = None
    #: Replace an existing output file that is not a results file of smslink.
    overwrite: bool = False
    #: Send although the same audience got this touchpoint recently (see REPEAT_WINDOW).
    again: bool = False


def start_run(store: Store, request: RunRequest, *, now: datetime | None = None) -> int:
    """Create a run for an audience and return its id; `execute_run` then does the work.

    Reads the whole audience once first (every byte decoded, every record parsed), and
    checks the touchpoint, the connection, the header and the results path: raises
    InputError or AudienceError, with nothing stored or sent, when one cannot be used.
    """
    touchpoint = store.get_touchpoint(request.touchpoint)
    connection = store.get_connection(touchpoint.connection)
    recipe = _recipe(touchpoint, connection.region)
    problem = connection_problem(connection)
    if problem:
        raise InputError(problem)
    scan = scan_audience(request.input_path, request.encoding)
    missing = recipe.missing_columns(list(scan.columns))
    if missing and not _is_jsonl(request.input_path):
        raise InputError(
            f"{request.input_path.name} has no column "
            + ", ".join(f"'{c}'" for c in missing)
            + f" (touchpoint '{touchpoint.name}' maps to it); its columns are: "
            + ", ".join(scan.columns)
        )
    if scan.records == 0:
        raise InputError(
            f"{request.input_path.name} has no records (only a header, or nothing): "
            "there is nothing to send"
        )
    check_results_path(
        request.output_path, input_path=request.input_path, overwrite=request.overwrite
    )
    fingerprint = f"{touchpoint.name}\n{scan.sha256}"
    now = now or datetime.now(UTC)
    try:
        run = store.create_run(
            touchpoint=touchpoint.name,
            connection=connection.name,
            input_path=str(request.input_path.resolve()),
            output_path=str(request.output_path.resolve()),
            settings=_snapshot(touchpoint, connection, request, scan, fingerprint),
            columns=list(scan.columns),
            fingerprint=None if request.again else fingerprint,
            repeat_since=now - REPEAT_WINDOW,
            now=now,
        )
    except RunConflict as conflict:
        raise _conflict_error(conflict, request) from None
    return run.id


def redirect_results(store: Store, run_id: int, path: Path, *, overwrite: bool = False) -> Run:
    """Have a run write its results to `path` from now on (its old place failed, or the
    user wants them elsewhere); the path is checked like a new run's."""
    run = store.get_run(run_id)
    check_results_path(path, input_path=Path(run.input_path), overwrite=overwrite)
    settings = {**run.settings, "overwrite": overwrite}
    store.update_run(run_id, output_path=str(path.resolve()), settings=settings)
    return store.get_run(run_id)


def connection_problem(connection: Connection) -> str | None:
    """Why a stored connection must not be used (e.g. its base URL was stored by an
    older smslink that accepted plain http to a remote host), or None."""
    try:
        check_base_url(connection.base_url)
    except ValueError as error:
        return f"connection '{connection.name}' cannot be used: {error}; fix its base URL"
    return None


def _conflict_error(conflict: RunConflict, request: RunRequest) -> InputError:
    earlier = conflict.run
    started = earlier.created_at.strftime("%Y-%m-%d %H:%M UTC")
    if conflict.reason == "output":
        return InputError(
            f"run {earlier.id} ({earlier.state}) will write its results to "
            f"{request.output_path}; choose another output file, or finish that run first"
        )
    if earlier.state is RunState.COMPLETED:
        when = f"completed; it started {started}"
    else:
        when = f"{earlier.state}, started {started}: resume it rather than start another"
    return RepeatedSend(
        f"touchpoint '{request.touchpoint}' was already sent to an audience with exactly "
        f"this content in run {earlier.id} ({when}); every recipient would get the message "
        "twice. To send it again on purpose, say so explicitly",
        earlier,
    )


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
        problem = connection_problem(connection)
        if problem:
            store.update_run(run_id, state=RunState.STOPPED, error=problem)
            raise RunHalted(problem)
        if not run.audience_complete:
            check_audience_unchanged(run)  # InputError: the run stays as it was
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
            reason = (
                f"every message is done, but the results file could not be written: {error}; "
                "write them to another file (the results stay in the store)"
            )
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
            f"the audience could not be read to its end: {error}. The records stored before "
            "that point were sent or stay to be sent when the run resumes; the rest were "
            "not read. Resuming needs the file exactly as it was when the run started"
        )


def check_audience_unchanged(run: Run) -> None:
    """Raise InputError when the audience file is gone or differs from the one the run
    started with: reading on from record N of another file would mix two audiences and
    silently skip or repeat people."""
    recorded = run.settings.get("audience")
    if not isinstance(recorded, dict):
        return  # a run started by an older smslink: nothing to compare with
    path = Path(run.input_path)
    try:
        size, sha256 = file_digest(path)
    except OSError as error:
        raise InputError(
            f"run {run.id} cannot read on: its audience {path} cannot be read "
            f"({error.strerror}); put the file back exactly as it was"
        ) from None
    if (size, sha256) == (recorded.get("size"), recorded.get("sha256")):
        return
    raise InputError(
        f"run {run.id} cannot read on: its audience {path} has changed since the run started "
        f"({recorded.get('size'):,} bytes then, {size:,} now; the content differs). Reading "
        f"on from record {run.total + 1} of another file would mix two audiences: put the "
        "original file back, or start a new run with the new file"
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


def _snapshot(
    touchpoint: Touchpoint,
    connection: Connection,
    request: RunRequest,
    scan: AudienceScan,
    fingerprint: str,
) -> dict:
    """What the run must keep using even if the touchpoint is edited before a resume, and
    what identifies its audience (so a changed file is noticed, and a repeat refused)."""
    return {
        "message": touchpoint.message,
        "phone_column": touchpoint.phone_column,
        "mapping": dict(touchpoint.mapping),
        "region": connection.region,
        "encoding": request.encoding,
        "overwrite": request.overwrite,
        "fingerprint": fingerprint,
        "audience": {
            "size": scan.size,
            "sha256": scan.sha256,
            "records": scan.records,
            "delimiter": scan.delimiter,
            "excel": scan.excel,
            "sep_line": scan.sep_line,
        },
    }


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES
