"""What the commands print about audiences and runs: preview totals, a run's summary by
status, and what Twilio's throttling taught a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from smslink.cli.common import console
from smslink.cli.render import command
from smslink.domain.models import ResultStatus

if TYPE_CHECKING:
    from smslink.app import PreviewTotals, RunCounters
    from smslink.app.runs import RunDetails

_STATUS_ORDER = [s.value for s in ResultStatus]


def status_key(status: str) -> int:
    """Result statuses in the order of the vocabulary (delivered … error), others last."""
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def print_totals(totals: PreviewTotals) -> None:
    encodings = ", ".join(f"{n} {e}" for e, n in sorted(totals.by_encoding.items()))
    console.print(
        f"{totals.records} records: {totals.messages} messages, {totals.segments} segments"
        + (f" ({encodings})" if encodings else "")
        + f", {totals.problem_count} would fail."
    )
    for number, reason in totals.problems:
        console.print(f"  record {number}: {reason}")
    hidden = totals.problem_count - len(totals.problems)
    if hidden > 0:
        console.print(f"  ... and {hidden} more")


def print_summary(details: RunDetails) -> None:
    """Counts by status under the run's name, and where its results are."""
    from rich.table import Table

    run, totals = details.run, details.totals
    table = Table("status", "records", title=f"Run {run.id}: {run.touchpoint}")
    for status in sorted(totals.by_status, key=status_key):
        table.add_row(status, f"{totals.by_status[status]:,}")
    table.add_row(Text("total", style="bold"), Text(f"{totals.total:,}", style="bold"))
    console.print(table)
    console.print(f"Results: {run.output_path}")


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
