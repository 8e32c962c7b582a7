"""Starting a run: everything is checked, then the run is stored; nothing is sent yet.

The audience is read whole once (every byte decoded, every record parsed), the touchpoint,
its connection, the audience's columns and the output path are checked, and a repeat of
the same send is refused; only then is the run stored, with a snapshot of what it must
keep using (`RunSnapshot`). Any refusal leaves nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from smslink.audience.readers import JSONL_SUFFIXES, AudienceScan, scan_audience
from smslink.audience.writers import check_results_path
from smslink.domain.connection_rules import stored_connection_problem
from smslink.domain.errors import Action, InvalidInput, Remedy, say
from smslink.domain.models import AudienceFacts, Connection, Run, RunSnapshot, RunState, Touchpoint
from smslink.domain.template import TemplateError
from smslink.engine.prepare import Recipe
from smslink.engine.timings import Timings
from smslink.store import RunConflict, Store


class InputError(InvalidInput):
    """The audience or touchpoint cannot be used as it is; the message says what to fix."""


class RepeatedSend(InputError):
    """The same touchpoint went to an audience with the same content a moment ago, or is
    still going to it: a second send would give every recipient the message twice. The
    remedy is to send again on purpose."""

    def __init__(self, message: str, earlier: Run) -> None:
        super().__init__(message, remedy=Remedy(Action.SEND_AGAIN, {"run_id": earlier.id}))
        self.earlier = earlier


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One send of a touchpoint to an audience file, with results written to a file."""

    touchpoint: str
    input_path: Path
    output_path: Path
    encoding: str | None = None
    #: Replace an existing output file that is not a results file of smslink.
    overwrite: bool = False
    #: Send although the same audience got this touchpoint recently (`Timings.repeat_window`).
    again: bool = False
    #: What starts it: "cli", or "web" (the service resumes its own runs when it restarts).
    origin: str = "cli"


def start_run(
    store: Store,
    request: RunRequest,
    *,
    timings: Timings | None = None,
    now: datetime | None = None,
) -> int:
    """Check everything, store the run, return its id; `execute_run` then does the work.

    Raises InputError, RepeatedSend or AudienceError, with nothing stored, when something
    cannot be used.
    """
    timings = timings or Timings()
    touchpoint = store.catalogue.get_touchpoint(request.touchpoint)
    connection = store.catalogue.get_connection(touchpoint.connection)
    recipe = recipe_for(touchpoint, connection.region)
    problem = stored_connection_problem(connection)
    if problem:
        raise InputError(problem)
    scan = scan_audience(request.input_path, request.encoding)
    missing = recipe.missing_columns(list(scan.columns))
    if missing and request.input_path.suffix.lower() not in JSONL_SUFFIXES:
        raise InputError(
            say(
                "%(file)s has no column %(missing)s (touchpoint %(touchpoint)s maps to it); "
                "its columns are: %(columns)s",
                file=request.input_path.name,
                missing=", ".join(f"'{c}'" for c in missing),
                touchpoint=f"'{touchpoint.name}'",
                columns=", ".join(scan.columns),
            )
        )
    if scan.records == 0:
        raise InputError(
            say(
                "%(file)s has no records (only a header, or nothing): there is nothing to send",
                file=request.input_path.name,
            )
        )
    check_results_path(
        request.output_path, input_path=request.input_path, overwrite=request.overwrite
    )
    snapshot = _snapshot(touchpoint, connection, request, scan)
    now = now or datetime.now(UTC)
    try:
        run = store.runs.create_run(
            touchpoint=touchpoint.name,
            connection=connection.name,
            input_path=str(request.input_path.resolve()),
            output_path=str(request.output_path.resolve()),
            snapshot=snapshot,
            columns=list(scan.columns),
            fingerprint=None if request.again else snapshot.fingerprint,
            repeat_since=now - timings.repeat_window,
            now=now,
            origin=request.origin,
        )
    except RunConflict as conflict:
        raise _conflict_error(conflict, request) from None
    return run.id


def redirect_results(store: Store, run_id: int, path: Path, *, overwrite: bool = False) -> Run:
    """Have a run write its results to `path` from now on (its old place failed, or the
    user wants them elsewhere); the path is checked like a new run's."""
    run = store.runs.get_run(run_id)
    check_results_path(path, input_path=Path(run.input_path), overwrite=overwrite)
    snapshot = replace(run.snapshot, overwrite=overwrite)
    store.runs.update_run(run_id, output_path=str(path.resolve()), snapshot=snapshot)
    return store.runs.get_run(run_id)


def recipe_for(touchpoint: Touchpoint, region: str) -> Recipe:
    """How each record of a send is prepared; InputError naming the touchpoint when its
    message or mapping was stored before a rule it breaks existed."""
    try:
        return Recipe.from_touchpoint(touchpoint, region)
    except TemplateError as error:
        problem = error.problems[0].message if len(error.problems) == 1 else str(error)
        raise InputError(
            say(
                "touchpoint %(name)s: %(problem)s",
                name=f"'{touchpoint.name}'",
                problem=problem,
            ),
            problems=error.problems,
        ) from error


def touchpoint_of(run: Run) -> Touchpoint:
    """The touchpoint as it was when the run started (its snapshot in the run)."""
    snapshot = run.snapshot
    return Touchpoint(
        name=run.touchpoint,
        connection=run.connection,
        message=snapshot.message,
        phone_column=snapshot.phone_column,
        mapping=dict(snapshot.mapping),
    )


def _conflict_error(conflict: RunConflict, request: RunRequest) -> InputError:
    earlier = conflict.run
    started = earlier.created_at.strftime("%Y-%m-%d %H:%M UTC")
    if conflict.reason == "output":
        return InputError(
            say(
                "run %(run)s (%(state)s) will write its results to %(path)s; choose another "
                "output file, or finish that run first",
                run=str(earlier.id),
                state=str(earlier.state),
                path=str(request.output_path),
            ),
            remedy=Remedy(Action.CHOOSE_OUTPUT, {"path": str(request.output_path)}),
        )
    if earlier.state is RunState.COMPLETED:
        return RepeatedSend(
            say(
                "touchpoint %(touchpoint)s was already sent to an audience with exactly this "
                "content in run %(run)s (completed; it started %(started)s); every recipient "
                "would get the message twice. To send it again on purpose, say so explicitly",
                touchpoint=f"'{request.touchpoint}'",
                run=str(earlier.id),
                started=started,
            ),
            earlier,
        )
    return RepeatedSend(
        say(
            "touchpoint %(touchpoint)s was already sent to an audience with exactly this "
            "content in run %(run)s (%(state)s, started %(started)s: resume it rather than "
            "start another); every recipient would get the message twice. To send it again "
            "on purpose, say so explicitly",
            touchpoint=f"'{request.touchpoint}'",
            run=str(earlier.id),
            state=str(earlier.state),
            started=started,
        ),
        earlier,
    )


def _snapshot(
    touchpoint: Touchpoint, connection: Connection, request: RunRequest, scan: AudienceScan
) -> RunSnapshot:
    """What the run must keep using even if the touchpoint is edited before a resume, and
    what identifies its audience (so a changed file is noticed, and a repeat refused)."""
    return RunSnapshot(
        message=touchpoint.message,
        phone_column=touchpoint.phone_column,
        mapping=dict(touchpoint.mapping),
        region=connection.region,
        encoding=request.encoding,
        overwrite=request.overwrite,
        fingerprint=f"{touchpoint.name}\n{scan.sha256}",
        audience=AudienceFacts(
            size=scan.size,
            sha256=scan.sha256,
            records=scan.records,
            delimiter=scan.delimiter,
            excel=scan.excel,
            sep_line=scan.sep_line,
        ),
    )
