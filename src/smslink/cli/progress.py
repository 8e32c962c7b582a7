"""Showing a run's live numbers: a Rich display on a terminal, plain lines otherwise.

Both read the engine's RunCounters from a background thread on their own schedule, so the
pipeline never waits for the screen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from smslink.app import RunCounters
from smslink.domain.models import ResultStatus

#: Seconds between plain progress lines when output is not a terminal (logs, CI).
PLAIN_EVERY_S = 5.0


class CountersView:
    """A Rich renderable that reads the counters each time the screen refreshes."""

    def __init__(self, counters: RunCounters) -> None:
        self._counters = counters
        self._started = time.monotonic()

    def __rich__(self) -> Group:
        c = self._counters
        known = _known_total(c)
        total = max(c.total or c.ingested, 1)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            "read ",
            ProgressBar(total=total, completed=c.ingested, width=40),
            Text(f"{c.ingested:,}"),
        )
        grid.add_row(
            "sent ",
            ProgressBar(total=total, completed=c.posted, width=40),
            Text(f"{c.posted:,}/{known}"),
        )
        grid.add_row(
            "final",
            ProgressBar(total=total, completed=c.done, width=40),
            Text(f"{c.done:,}/{known}"),
        )
        elapsed = time.monotonic() - self._started
        rate = c.posted / elapsed if elapsed > 0 else 0.0
        line = Text(
            f"errors {c.errors:,}   delivered {c.by_status[ResultStatus.DELIVERED]:,}   "
            f"{rate:,.0f} msg/s   {elapsed:,.0f}s",
            style="dim",
        )
        return Group(grid, line)


def _known_total(counters: RunCounters) -> str:
    """The audience size once it is all read; until then what is read so far, and "+"."""
    if counters.total:
        return f"{counters.total:,}"
    return f"{counters.ingested:,}+"


def plain_line(counters: RunCounters) -> str:
    c = counters
    return (
        f"read {c.ingested}, sent {c.posted}/{_known_total(c)}, "
        f"final {c.done}/{_known_total(c)}, errors {c.errors}"
    )


@contextmanager
def live_progress(counters: RunCounters, console: Console) -> Iterator[None]:
    """Show the counters while the block runs."""
    if console.is_terminal:
        with Live(CountersView(counters), console=console, refresh_per_second=8, transient=True):
            yield
        return
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(PLAIN_EVERY_S):
            console.print(plain_line(counters), highlight=False)

    thread = threading.Thread(target=report, name="smslink-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
