"""Running a run from the command line: progress on the screen, Ctrl-C and SIGTERM as a
clean stop, and a stopped run's reason with the command that resumes it."""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import NoReturn

import typer

from smslink.app import LeaseLost, RunCounters, Smslink
from smslink.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, console, err_console, fail
from smslink.cli.progress import live_progress
from smslink.cli.render import command, remedy
from smslink.domain.errors import Action, Busy, Halted
from smslink.domain.models import Run


def execute(app: Smslink, run_id: int, counters: RunCounters) -> Run:
    """Do the run's work with live progress; Ctrl-C and SIGTERM interrupt it cleanly."""

    async def main() -> Run:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await app.runs.execute(run_id, counters)

    # Everything made so far (the imported modules, the run's setup) lives until the
    # process ends: out of the collector's sight, a full collection during the run scans
    # only what the run makes (bench/RESULTS.md section 15). Once a process: a caller
    # running many runs in one process (tests) would otherwise pin each run's garbage.
    if not gc.get_freeze_count():
        gc.freeze()
    try:
        with live_progress(counters, console):
            return asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted(run_id)
    except (Busy, LeaseLost) as error:  # another process has the run: nothing to resume
        fail(str(error), EXIT_FAILED)
    except Halted as halt:
        fail(f"run {run_id} stopped: {_reason(halt)}. Then: {_resume(run_id, halt)}", EXIT_FAILED)


def _reason(halt: Halted) -> str:
    """The reason, with the command that fixes the connection when that is the remedy."""
    if halt.remedy is not None and halt.remedy.action is Action.UPDATE_CONNECTION:
        return f"{halt} ({remedy(halt.remedy)})"
    return str(halt)


def _resume(run_id: int, halt: Halted) -> str:
    """The command that finishes the run, writing elsewhere when the results need it."""
    words = command("runs", "resume", str(run_id))
    if halt.remedy is not None and halt.remedy.args.get("output"):
        words += " --output OTHER-FILE"
    return words


def interrupted(run_id: int | None) -> NoReturn:
    if run_id is None:
        err_console.print("Interrupted before anything was stored; nothing was sent.")
    else:
        err_console.print(
            f"Interrupted. Run {run_id} is saved; finish it with: "
            + command("runs", "resume", str(run_id))
        )
    raise typer.Exit(EXIT_INTERRUPTED)
