"""`smslink send` and `smslink runs ...`: sending to an audience, watching, resuming."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from smslink.audience.readers import AudienceError
from smslink.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    command,
    console,
    err_console,
    fail,
    print_fields,
    store_session,
)
from smslink.cli.progress import live_progress
from smslink.cli.touchpoints import print_totals
from smslink.engine.counters import RunCounters
from smslink.engine.errors import LeaseLost, RunHalted
from smslink.engine.lease import RunBusy
from smslink.engine.prepare import Recipe
from smslink.engine.preview import dry_run
from smslink.engine.results import export_results
from smslink.engine.run import (
    InputError,
    RepeatedSend,
    RunRequest,
    execute_run,
    redirect_results,
    start_run,
)
from smslink.models import ResultStatus, Run, RunState
from smslink.store import Store
from smslink.template import TemplateError

app = typer.Typer(
    help="Runs: every send, its progress and results; resume after a stop.", rich_markup_mode=None
)

_STATUS_ORDER = [s.value for s in ResultStatus]


def send(
    touchpoint: Annotated[str, typer.Argument(help="The touchpoint to send.")],
    input_: Annotated[Path, typer.Option("--input", help="Audience file (.csv or .jsonl).")],
    output: Annotated[Path, typer.Option(help="Results file (.csv or .jsonl).")],
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Check and render every record; send nothing.")
    ] = False,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of a CSV that is not UTF-8, e.g. cp1252.")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing output file that is not a smslink results file."),
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Send although this touchpoint went to the same audience in the last 24 hours.",
        ),
    ] = False,
) -> None:
    """Send a touchpoint to every record of an audience and track each message."""
    if dry_run_:
        _dry_run(touchpoint, input_, output, encoding, overwrite)
        return
    request = RunRequest(touchpoint, input_, output, encoding, overwrite=overwrite, again=again)
    counters = RunCounters()
    with store_session() as store:
        run_id = None
        try:
            run_id = start_run(store, request)
            with live_progress(counters, console):
                run = execute(store, run_id, counters)
        except RepeatedSend as error:
            fail(f"{error} with --again")
        except (InputError, AudienceError) as error:
            fail(_with_overwrite_hint(str(error)))
        except KeyboardInterrupt:
            _interrupted(run_id)
        print_summary(store, run)
        print_throttling(counters, run.connection)


def _with_overwrite_hint(message: str) -> str:
    """The writer says "allow overwriting it"; on the command line that is a flag."""
    return message.replace("allow overwriting it", "pass --overwrite")


def _dry_run(
    touchpoint: str, input_: Path, output: Path, encoding: str | None, overwrite: bool
) -> None:
    with store_session() as store:
        t = store.get_touchpoint(touchpoint)
        region = store.get_connection(t.connection).region
    try:
        recipe = Recipe.from_touchpoint(t, region)
        totals = dry_run(recipe, input_, output, encoding, overwrite=overwrite)
    except (TemplateError, AudienceError) as error:
        fail(_with_overwrite_hint(str(error)))
    print_totals(totals)
    console.print(f"Dry run: nothing was sent. Rendered results: {output}")


def execute(store: Store, run_id: int, counters: RunCounters) -> Run:
    """Run the async pipeline; Ctrl-C and SIGTERM stop it cleanly as KeyboardInterrupt."""

    async def main() -> Run:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await execute_run(store, run_id, counters)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    except (RunBusy, LeaseLost) as error:
        fail(str(error), EXIT_FAILED)
    except RunHalted as halt:
        resume = command("runs", "resume", str(run_id))
        if "results file could not be written" in str(halt):
            resume += " --output OTHER-FILE"
        fail(f"run {run_id} stopped: {halt}. Then: {resume}", EXIT_FAILED)


def _interrupted(run_id: int | None) -> None:
    if run_id is None:
        err_console.print("Interrupted before anything was stored; nothing was sent.")
    else:
        err_console.print(
            f"Interrupted. Run {run_id} is saved; finish it with: "
            + command("runs", "resume", str(run_id))
        )
    raise typer.Exit(EXIT_INTERRUPTED)


def print_throttling(counters: RunCounters, connection: str) -> None:
    """Say so when Twilio throttled the run, and what concurrency would have avoided it."""
    if not counters.throttled or counters.settled_concurrency is None:
        return
    settled = counters.settled_concurrency
    console.print(
        f"Twilio answered {counters.throttled:,} requests with 429 (too many at once; each was "
        f"retried, none sent twice). The run settled at about {settled} requests at once; "
        f"`{command('connection', 'update', connection, '--concurrency', str(settled))}` "
        "avoids the search next time."
    )


def print_summary(store: Store, run: Run) -> None:
    totals = store.totals(run.id)
    table = Table("status", "records", title=f"Run {run.id}: {run.touchpoint}")
    for status in sorted(totals.by_status, key=_status_key):
        table.add_row(status, f"{totals.by_status[status]:,}")
    table.add_row(Text("total", style="bold"), Text(f"{totals.total:,}", style="bold"))
    console.print(table)
    console.print(f"Results: {run.output_path}")


def _status_key(status: str) -> int:
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


@app.command("list")
def list_(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """List recent runs."""
    with store_session() as store:
        runs = store.list_runs(limit)
        if not runs:
            console.print("No runs yet: smslink send TOUCHPOINT --input FILE --output FILE")
            return
        table = Table("id", "touchpoint", "state", "started (UTC)", "records", "done")
        table.columns[1].no_wrap = True
        table.columns[1].min_width = max(len(run.touchpoint) for run in runs)
        for run in runs:
            totals = store.totals(run.id)
            table.add_row(
                str(run.id),
                run.touchpoint,
                str(run.state),
                run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"{run.total:,}",
                f"{totals.done:,}",
            )
    console.print(table)


@app.command("show")
def show(run_id: int) -> None:
    """Show a run: its state, counts by stage and by status, and where its results are."""
    with store_session() as store:
        run = store.get_run(run_id)
        totals = store.totals(run_id)
    rows = [
        ("run", str(run.id)),
        ("touchpoint", run.touchpoint),
        ("connection", run.connection),
        ("state", str(run.state)),
        ("started", run.created_at.isoformat()),
        ("finished", run.finished_at.isoformat() if run.finished_at else ""),
        ("input", run.input_path),
        ("results", run.output_path if run.state is RunState.COMPLETED else "(not written yet)"),
        ("records", f"{totals.total:,}"),
        (
            "stages",
            f"pending {totals.pending:,}, posting {totals.posting:,}, "
            f"tracking {totals.tracking:,}, done {totals.done:,}",
        ),
        (
            "results by status",
            ", ".join(
                f"{s} {totals.by_status[s]:,}" for s in sorted(totals.by_status, key=_status_key)
            ),
        ),
    ]
    if run.error:
        rows.append(("stopped because", run.error))
    print_fields(rows)
    if run.state not in (RunState.COMPLETED,):
        console.print(f"Finish it with: {command('runs', 'resume', str(run.id))}")
    console.print(
        "Its results as they stand: "
        + command("runs", "export", str(run.id), "--output", "FILE.csv")
    )


@app.command("resume")
def resume(
    run_id: int,
    output: Annotated[
        Path | None,
        typer.Option(help="Write the results here instead (.csv, .tsv or .jsonl)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing output file that is not a smslink results file."),
    ] = False,
) -> None:
    """Finish a run after Ctrl-C, a crash or a fixed connection; never re-sends a message."""
    counters = RunCounters()
    with store_session() as store:
        run = store.get_run(run_id)
        try:
            if output is not None:
                run = redirect_results(store, run_id, output, overwrite=overwrite)
            if run.state is RunState.COMPLETED:
                if output is None:
                    console.print(f"Run {run_id} is already complete; results: {run.output_path}")
                    return
                summary = export_results(store, run, output, overwrite=overwrite)
                console.print(f"Run {run_id} is already complete; results: {summary.path}")
                return
            with live_progress(counters, console):
                run = execute(store, run_id, counters)
        except (InputError, AudienceError) as error:
            fail(_with_overwrite_hint(str(error)))
        except KeyboardInterrupt:
            _interrupted(run_id)
        print_summary(store, run)
        print_throttling(counters, run.connection)


@app.command("export")
def export(
    run_id: int,
    output: Annotated[Path, typer.Option(help="Results file (.csv, .tsv or .jsonl).")],
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing output file that is not a smslink results file."),
    ] = False,
) -> None:
    """Write a run's results as they stand to a file: any run, any time, as often as needed."""
    with store_session() as store:
        run = store.get_run(run_id)
        try:
            summary = export_results(store, run, output, overwrite=overwrite)
        except AudienceError as error:
            fail(_with_overwrite_hint(str(error)))
    console.print(f"Run {run_id}: {summary.rows:,} records written to {summary.path}")
    if summary.unfinished:
        console.print(
            f"{summary.unfinished:,} of them are not final yet (status 'unfinished'): the run "
            f"is {run.state}; " + command("runs", "resume", str(run_id)) + " finishes it"
        )
