"""`smslink demo`: the main job against the embedded default, no Twilio account needed.

The demo is the main job end to end (connection, touchpoint, send, track, results) against
the built-in simulator on a free loopback port and the ordinary SQLite store, so what a new
user sees is exactly what a real send does; only the base URL and credentials differ.
"""

from __future__ import annotations

import csv
from contextlib import AbstractContextManager, suppress
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from smslink.cli.common import console, session
from smslink.cli.render import command
from smslink.cli.reports import print_summary
from smslink.domain.models import Connection, Touchpoint
from smslink.simulator.config import SimulatorConfig

if TYPE_CHECKING:
    from smslink.app import Smslink

DEMO_NAME = "demo"
DEMO_ACCOUNT_SID = "AC" + "de300000000000000000000000000001"
DEMO_MESSAGE = "Hi <FirstName>, your order is ready for pickup in <City>. Reply STOP to opt out."
#: Quick enough to finish in seconds, with every kind of result showing up.
DEMO_SIMULATOR = SimulatorConfig(
    auth_token="demo-token",
    queued_s=0.3,
    sending_s=0.3,
    sent_s=1.0,
    undelivered_share=0.08,
    failed_share=0.05,
    stuck_share=0.05,
    seed=7,
)


def demo(
    output: Annotated[Path, typer.Option(help="Where to write the results.")] = Path(
        "demo-results.csv"
    ),
) -> None:
    """Send a sample audience through the built-in simulator and show every result."""
    from smslink.app import RunCounters, RunRequest
    from smslink.cli.execution import execute

    with demo_simulator() as base_url, session() as smslink:
        console.print(f"Twilio simulator on {base_url}")
        configure_demo(smslink, base_url)
        try:
            audience = files("smslink") / "data" / "demo_audience.csv"
            with as_file(audience) as audience_path:
                counters = RunCounters()
                request = RunRequest(DEMO_NAME, Path(audience_path), output, again=True)
                run = execute(smslink, smslink.runs.start(request), counters)
        finally:
            _unconfigure(smslink)
        print_summary(smslink.runs.show(run.id))
        _print_problems(Path(run.output_path))
        console.print(
            f"The demo's simulator has stopped, so its connection and touchpoint are removed "
            f"again; run {run.id} stays in the store: {command('runs', 'show', str(run.id))}"
        )


def demo_simulator() -> AbstractContextManager[str]:
    """The simulator the demo talks to, on a free loopback port (its base URL)."""
    from smslink.simulator import run_in_thread  # the web server is only needed here

    return run_in_thread(DEMO_SIMULATOR)


def configure_demo(smslink: Smslink, base_url: str) -> None:
    """Create the demo connection and touchpoint afresh (the port changes every time)."""
    from smslink.app import AlreadyExists
    from smslink.app.connections import ConnectionChanges

    _unconfigure(smslink)
    connection = Connection(
        name=DEMO_NAME,
        account_sid=DEMO_ACCOUNT_SID,
        auth_token=DEMO_SIMULATOR.auth_token,
        from_number="+15005550006",
        base_url=base_url,
        poll_interval_ms=500,
        poll_attempts=8,
        concurrency=10,
    )
    try:
        smslink.connections.add(connection)
    except AlreadyExists:  # still used by a touchpoint of the user's: point it here
        smslink.connections.update(
            DEMO_NAME, ConnectionChanges(auth_token=connection.auth_token, base_url=base_url)
        )
    smslink.touchpoints.add(
        Touchpoint(
            name=DEMO_NAME,
            connection=DEMO_NAME,
            message=DEMO_MESSAGE,
            phone_column="Phone",
            mapping={"FirstName": "FirstName", "City": "City"},
        )
    )
    console.print(f"Connection and touchpoint '{DEMO_NAME}': {DEMO_MESSAGE}")


def _unconfigure(smslink: Smslink) -> None:
    """Take the demo connection away once its simulator is gone: left behind, it would
    point at a dead port and look like a connection that works."""
    from smslink.app import InUse, NotFound

    with suppress(NotFound):
        smslink.touchpoints.remove(DEMO_NAME)
    with suppress(NotFound, InUse):
        smslink.connections.remove(DEMO_NAME)


def _print_problems(path: Path) -> None:
    """The records that did not end delivered, one line each (the full text is in the
    results file)."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = [r for r in csv.DictReader(file) if r["status"] != "delivered"]
    if not rows:
        return
    # One line per record: the short columns padded to their widest value, the reason in
    # whatever is left of the line, cut short (the results file has it whole).
    keys = ("CustomerId", "FirstName", "to", "status", "error_code")
    widths = {key: max(len(row[key]) for row in rows) for key in keys}
    console.print("Not delivered:", style="bold")
    for row in rows:
        line = Text("  ")
        for key in keys:
            style = _STATUS_STYLE.get(row["status"], "yellow") if key == "status" else None
            line.append(row[key].ljust(widths[key]) + "  ", style=style)
        line.append(row["error_message"])
        console.print(line, no_wrap=True, overflow="ellipsis")
    console.print(f"Every record with its full result: {path}")


_STATUS_STYLE = {"delivered": "green", "sent": "cyan", "error": "red"}
