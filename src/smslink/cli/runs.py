"""`smslink send` and `smslink runs ...`: sending to an audience, watching, resuming."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smslink.cli.common import console, print_fields, session
from smslink.cli.render import command
from smslink.cli.reports import print_summary, print_throttling, print_totals, status_key
from smslink.cli.workers import require_workers, send_queued
from smslink.domain.models import Run, RunState

app = typer.Typer(
    help="Runs: every send, its progress and results; resume after a stop.", rich_markup_mode=None
)

_OVERWRITE_HELP = "Replace an existing output file that is not a smslink results file."
_ENCODING_HELP = "Text encoding of a CSV that is not UTF-8, e.g. cp1252."


def send(
    touchpoint: Annotated[str, typer.Argument(help="The touchpoint to send.")],
    input_: Annotated[Path, typer.Option("--input", help="Audience file (.csv or .jsonl).")],
    output: Annotated[Path, typer.Option(help="Results file (.csv or .jsonl).")],
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Check and render every record; send nothing.")
    ] = False,
    encoding: Annotated[str | None, typer.Option(help=_ENCODING_HELP)] = None,
    overwrite: Annotated[bool, typer.Option(help=_OVERWRITE_HELP)] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Send although this touchpoint went to the same audience in the last 24 hours.",
        ),
    ] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Have the workers send it (the store on PostgreSQL); results are written here.",
        ),
    ] = False,
) -> None:
    """Send a touchpoint to every record of an audience and track each message."""
    from smslink.app import RunCounters, RunRequest
    from smslink.cli.execution import execute, interrupted

    if dry_run_:
        with session() as smslink:
            totals = smslink.runs.dry_run(
                touchpoint, input_, output, encoding=encoding, overwrite=overwrite
            )
        print_totals(totals)
        console.print(f"Dry run: nothing was sent. Rendered results: {output}")
        return
    request = RunRequest(touchpoint, input_, output, encoding, overwrite=overwrite, again=again)
    counters = RunCounters()
    with session() as smslink:
        if queue:
            require_workers(smslink)  # before anything is stored
        try:
            run_id = smslink.runs.start(request)  # reads the whole audience first
        except KeyboardInterrupt:
            interrupted(None)
        if queue:
            run = send_queued(smslink, run_id, counters)
        else:
            run = execute(smslink, run_id, counters)
        print_summary(smslink.runs.show(run.id))
        print_throttling(counters, run.connection)


@app.command("list")
def list_(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """List recent runs."""
    from rich.table import Table

    with session() as smslink:
        runs = smslink.runs.list(limit)
    if not runs:
        console.print("No runs yet: smslink send TOUCHPOINT --input FILE --output FILE")
        return
    table = Table("id", "touchpoint", "state", "started (UTC)", "records", "done")
    table.columns[1].no_wrap = True
    table.columns[1].min_width = max(len(d.run.touchpoint) for d in runs)
    for details in runs:
        run, totals = details.run, details.totals
        table.add_row(
            str(run.id),
            run.touchpoint,
            str(run.state),
            run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{run.total:,}",
            f"{totals.done:,}",
        )
    console.print(table)


def _results_place(run: Run) -> str:
    if run.is_journey:
        return "events (GET /api/events, webhooks); no file"
    return run.output_path if run.state is RunState.COMPLETED else "(not written yet)"


@app.command("show")
def show(run_id: int) -> None:
    """Show a run: its state, counts by stage and by status, and where its results are."""
    with session() as smslink:
        details = smslink.runs.show(run_id)
        holders = smslink.work.holders(run_id)
    run, totals = details.run, details.totals
    rows = [
        ("run", str(run.id)),
        ("touchpoint", run.touchpoint),
        ("connection", run.connection),
        ("state", str(run.state)),
        ("started", run.created_at.isoformat()),
        ("finished", run.finished_at.isoformat() if run.finished_at else ""),
        ("input", "journey records (the API)" if run.is_journey else run.input_path),
        ("results", _results_place(run)),
        ("records", f"{totals.total:,}"),
        (
            "stages",
            f"pending {totals.pending:,}, posting {totals.posting:,}, "
            f"tracking {totals.tracking:,}, done {totals.done:,}",
        ),
        (
            "results by status",
            ", ".join(
                f"{s} {totals.by_status[s]:,}" for s in sorted(totals.by_status, key=status_key)
            ),
        ),
    ]
    if run.error:
        rows.append(("stopped because", run.error))
    if holders:
        rows.append(("worked on by", _holders_line(holders)))
    print_fields(rows)
    if run.state is not RunState.COMPLETED:
        resume = ("runs", "resume", str(run.id)) + (("--queue",) if run.queued else ())
        console.print(f"Finish it with: {command(*resume)}")
    console.print(
        "Its results as they stand: "
        + command("runs", "export", str(run.id), "--output", "FILE.csv")
    )


def _holders_line(holders: dict[str, list[int | None]]) -> str:
    """Each process working on the run (host and pid) with what it holds."""
    by_process: dict[tuple[str, str], list[int | None]] = {}
    for owner, held in holders.items():  # one owner per lease: a worker's jobs each have one
        host, _, rest = owner.partition(":")
        by_process.setdefault((host, rest.partition(":")[0]), []).extend(held)
    described = []
    for (host, pid), held in by_process.items():
        parts = sorted(p for p in held if p is not None)
        what = []
        if None in held:
            what.append("the run")
        if parts:
            what.append("part" + ("s " if len(parts) > 1 else " ") + ", ".join(map(str, parts)))
        described.append(f"{host} pid {pid} ({' and '.join(what)})")
    return "; ".join(described)


@app.command("resume")
def resume(
    run_id: int,
    output: Annotated[
        Path | None,
        typer.Option(help="Write the results here instead (.csv, .tsv or .jsonl)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help=_OVERWRITE_HELP)] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Have the workers finish it; results are written here.")
    ] = False,
) -> None:
    """Finish a run after Ctrl-C, a crash or a fixed connection; never re-sends a message."""
    from smslink.app import RunCounters
    from smslink.cli.execution import execute

    counters = RunCounters()
    with session() as smslink:
        if queue:
            require_workers(smslink)
        run = smslink.runs.show(run_id).run
        if output is not None:
            run = smslink.runs.redirect(run_id, output, overwrite=overwrite)
        if run.state is RunState.COMPLETED:
            if output is not None:
                smslink.runs.export(run_id, output, overwrite=overwrite)
            console.print(f"Run {run_id} is already complete; results: {run.output_path}")
            return
        if queue:
            run = send_queued(smslink, run_id, counters)
        else:
            run = execute(smslink, run_id, counters)  # a changed audience file: InvalidInput
        print_summary(smslink.runs.show(run.id))
        print_throttling(counters, run.connection)


@app.command("stop")
def stop(run_id: int) -> None:
    """Ask the process sending a run to stop it; it stops resumably within about a second."""
    with session() as smslink:
        run = smslink.runs.stop(run_id)
    if run.state is not RunState.SENDING:
        console.print(f"Run {run_id} is {run.state}: nothing is sending it, so nothing to stop.")
        return
    console.print(
        f"Asked run {run_id} to stop: the process sending it stops within about a second. "
        f"Finish it later with: {command('runs', 'resume', str(run_id))}"
    )


@app.command("export")
def export(
    run_id: int,
    output: Annotated[Path, typer.Option(help="Results file (.csv, .tsv or .jsonl).")],
    overwrite: Annotated[bool, typer.Option(help=_OVERWRITE_HELP)] = False,
) -> None:
    """Write a run's results as they stand to a file: any run, any time, as often as needed."""
    with session() as smslink:
        summary = smslink.runs.export(run_id, output, overwrite=overwrite)
        state = smslink.runs.show(run_id).run.state
    console.print(f"Run {run_id}: {summary.rows:,} records written to {summary.path}")
    if summary.unfinished:
        console.print(
            f"{summary.unfinished:,} of them are not final yet (status 'unfinished'): the run "
            f"is {state}; " + command("runs", "resume", str(run_id)) + " finishes it"
        )
