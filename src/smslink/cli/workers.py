"""`smslink worker`, `smslink workers` and `smslink send --queue`: runs sent by workers.

A worker needs only the shared database (SMSLINK_DATABASE_URL on PostgreSQL, and the same
SMSLINK_SECRET_KEY as the service, to read connections' tokens); see docs/deploy.md.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smslink.app import QUEUES, WorkerSettings
from smslink.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    console,
    err_console,
    fail,
    session,
)
from smslink.cli.render import command
from smslink.domain.models import ResultStatus, Run, RunState

if TYPE_CHECKING:
    from smslink.app import RunCounters, Smslink

#: Why a command that needs workers cannot have them.
NEEDS_POSTGRES = (
    "workers need the store on PostgreSQL: set SMSLINK_DATABASE_URL to the shared database "
    "(see docs/deploy.md)"
)

DEFAULTS = WorkerSettings()


def worker(
    concurrency: Annotated[
        int,
        typer.Option(min=1, max=1000, help="Requests to Twilio in flight at once, all jobs."),
    ] = DEFAULTS.concurrency,
    jobs: Annotated[
        int, typer.Option(min=1, max=100, help="Jobs (parts of runs, tracking) at once.")
    ] = DEFAULTS.jobs,
    queues: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "--queues",
            help="Take jobs of this queue only (repeatable): sending, tracking or journeys.",
        ),
    ] = None,
    stalled_s: Annotated[
        float,
        typer.Option(
            "--stalled-s", min=1, help="A worker silent this long is dead: its jobs go to others."
        ),
    ] = DEFAULTS.stalled_s,
    lease_s: Annotated[
        float,
        typer.Option(
            "--lease-s", min=3, help="What a worker holds passes to another after this, unrenewed."
        ),
    ] = DEFAULTS.lease_ttl_s,
) -> None:
    """Send runs queued in the shared database until stopped (Ctrl-C or SIGTERM: requests
    in flight finish, the rest goes to the other workers)."""
    import asyncio  # here, not at the top: `smslink --help` need not load it

    unknown = sorted(set(queues or ()) - set(QUEUES))
    if unknown:
        fail(
            f"no queue named {', '.join(unknown)}: the queues are {', '.join(QUEUES)}",
            EXIT_USAGE,
        )
    settings = WorkerSettings(
        concurrency=concurrency,
        jobs=jobs,
        queues=tuple(queues) if queues else None,
        heartbeat_s=min(DEFAULTS.heartbeat_s, stalled_s / 3),
        stalled_s=stalled_s,
        lease_ttl_s=lease_s,
    )
    with session() as smslink:
        require_workers(smslink)
        if not smslink.work.shares_pacing:
            err_console.print(
                "SMSLINK_REDIS_URL is not set: this worker paces on its own, so several "
                "workers together may exceed an account's concurrency and a sender's cap "
                "(see docs/deploy.md, Shared limits)."
            )

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await smslink.work.run_worker(
                settings,
                stop=stop,
                on_started=lambda owner: console.print(f"Worker {owner} is taking jobs."),
            )

        asyncio.run(main())
    console.print("Worker stopped; what it had not sent went back to the queue.")


def workers() -> None:
    """List the live workers: what each works on and how fast it sends."""
    from rich.table import Table

    with session() as smslink:
        live = smslink.work.live()
    if not live:
        console.print("No worker seen in the last minute. Start one with: " + command("worker"))
        return
    table = Table("worker", "started (UTC)", "runs", "sent", "msg/s", "seen")
    now = datetime.now(UTC)
    for row in live:
        table.add_row(
            row.owner.rsplit(":", 2)[0],
            f"{row.started_at:%Y-%m-%d %H:%M:%S}",
            ", ".join(str(r) for r in row.runs) or "-",
            f"{row.posted:,}",
            f"{row.rate:,.1f}",
            f"{(now - row.seen_at).total_seconds():.0f}s ago",
        )
    console.print(table)


def require_workers(smslink: Smslink) -> None:
    """Exit with the fix when this store cannot have workers (SQLite)."""
    if not smslink.work.available():
        fail(NEEDS_POSTGRES, EXIT_FAILED)


def send_queued(smslink: Smslink, run_id: int, counters: RunCounters) -> Run:
    """Queue the run for the workers (its audience is read here first), follow it until it
    is completed or stopped, then write its results file here."""
    import asyncio

    from smslink.cli.progress import live_progress

    require_workers(smslink)
    resume = command("runs", "resume", str(run_id), "--queue")
    queued = False
    try:
        with live_progress(counters, console):
            asyncio.run(smslink.work.enqueue(run_id, counters))
            queued = True
            run = _follow(smslink, run_id, counters)
    except (KeyboardInterrupt, asyncio.CancelledError):
        if not queued:  # its audience was not all read: nothing goes on without this file
            err_console.print(
                f"Interrupted while reading the audience. Run {run_id} is saved; finish it "
                f"with: {resume}"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        err_console.print(
            f"Run {run_id} goes on with the workers. Follow it with "
            + command("runs", "show", str(run_id))
            + "; its results: "
            + command("runs", "export", str(run_id), "--output", "FILE.csv")
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if run.state is RunState.STOPPED:
        fail(f"run {run_id} stopped: {run.error}. Then: {resume}", EXIT_FAILED)
    smslink.runs.export(run_id, Path(run.output_path), overwrite=True)
    return run


def _follow(smslink: Smslink, run_id: int, counters: RunCounters) -> Run:
    """Read the run's numbers from the store every second until it ends."""
    while True:
        details = smslink.runs.show(run_id)
        totals = details.totals
        counters.total = counters.ingested = totals.total
        # Sent: past its POST (tracked, or final with a message); errors are never posted.
        errors = totals.by_status.get(ResultStatus.ERROR, 0)
        counters.posted = totals.tracking + totals.done - errors
        counters.done = totals.done
        counters.by_status = Counter(totals.by_status)
        if details.run.state in (RunState.COMPLETED, RunState.STOPPED):
            return details.run
        time.sleep(1.0)
