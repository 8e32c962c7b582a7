"""`smslink demo` and `smslink simulator`: the embedded default, no Twilio account needed.

The demo is the main job end to end (connection, touchpoint, send, track, results) against
the built-in simulator on a free loopback port and the ordinary SQLite store, so what a new
user sees is exactly what a real send does; only the base URL and credentials differ.
"""

from __future__ import annotations

import csv
from contextlib import suppress
from dataclasses import fields
from importlib.resources import as_file, files
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from smslink.audience.readers import AudienceError
from smslink.cli.common import command, console, fail, store_session
from smslink.cli.progress import live_progress
from smslink.cli.runs import execute, print_summary
from smslink.engine.counters import RunCounters
from smslink.engine.run import InputError, RunRequest, start_run
from smslink.models import Connection, Touchpoint
from smslink.simulator.config import DEFAULT_AUTH_TOKEN, SimulatorConfig
from smslink.store import InUse, NotFound, Store

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
    from smslink.simulator import run_in_thread  # the web server is only needed here

    with run_in_thread(DEMO_SIMULATOR) as base_url, store_session() as store:
        console.print(f"Twilio simulator on {base_url}")
        _configure(store, base_url)
        try:
            audience = files("smslink") / "data" / "demo_audience.csv"
            with as_file(audience) as audience_path:
                counters = RunCounters()
                request = RunRequest(DEMO_NAME, Path(audience_path), output, again=True)
                try:
                    run_id = start_run(store, request)
                except (InputError, AudienceError) as error:
                    fail(str(error))
                with live_progress(counters, console):
                    run = execute(store, run_id, counters)
        finally:
            _unconfigure(store)
        print_summary(store, run)
        _print_problems(Path(run.output_path))
        console.print(
            f"The demo's simulator has stopped, so its connection and touchpoint are removed "
            f"again; run {run.id} stays in the store: {command('runs', 'show', str(run.id))}"
        )


def _configure(store: Store, base_url: str) -> None:
    """Create or refresh the demo connection and touchpoint (the port changes every time)."""
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
        store.get_connection(DEMO_NAME)
        store.update_connection(connection)
    except NotFound:
        store.add_connection(connection)
    with suppress(NotFound):
        store.remove_touchpoint(DEMO_NAME)
    store.add_touchpoint(
        Touchpoint(
            name=DEMO_NAME,
            connection=DEMO_NAME,
            message=DEMO_MESSAGE,
            phone_column="Phone",
            mapping={"FirstName": "FirstName", "City": "City"},
        )
    )
    console.print(f"Connection and touchpoint '{DEMO_NAME}': {DEMO_MESSAGE}")


def _unconfigure(store: Store) -> None:
    """Take the demo connection away once its simulator is gone: left behind, it would
    point at a dead port and look like a connection that works."""
    with suppress(NotFound):
        store.remove_touchpoint(DEMO_NAME)
    with suppress(NotFound, InUse):
        store.remove_connection(DEMO_NAME)


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


def simulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    auth_token: Annotated[
        str, typer.Option(help="The token every account accepts.")
    ] = DEFAULT_AUTH_TOKEN,
    latency_ms: Annotated[float, typer.Option(help="Delay before every answer.")] = 0.0,
    undelivered_share: Annotated[float, typer.Option(help="Share ending undelivered.")] = 0.0,
    failed_share: Annotated[float, typer.Option(help="Share ending failed.")] = 0.0,
    stuck_share: Annotated[float, typer.Option(help="Share staying 'sent' forever.")] = 0.0,
    queued_s: Annotated[float, typer.Option(help="Seconds queued.")] = 0.2,
    sending_s: Annotated[float, typer.Option(help="Seconds sending.")] = 0.2,
    sent_s: Annotated[float, typer.Option(help="Seconds sent before final.")] = 0.5,
    owned_number: Annotated[
        list[str] | None, typer.Option(help="A From number the account owns (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of recipient outcomes and fault draws.")] = 0,
    latency_jitter_ms: Annotated[
        float, typer.Option(help="Mean of an exponential extra delay per answer.")
    ] = 0.0,
    concurrency_limit: Annotated[
        int | None, typer.Option(help="API requests in progress above this get 429/20429.")
    ] = None,
    retry_after_s: Annotated[
        float | None, typer.Option(help="Retry-After on 429s (absent by default).")
    ] = None,
    server_error_share: Annotated[
        float, typer.Option(help="Share of API requests answered 500/503, doing nothing.")
    ] = 0.0,
    reset_before_share: Annotated[
        float, typer.Option(help="Share of API requests reset before any work.")
    ] = 0.0,
    reset_after_share: Annotated[
        float, typer.Option(help="Share of creates reset after the message is stored.")
    ] = 0.0,
    delay_after_create_share: Annotated[
        float, typer.Option(help="Share of creates answered late (see --delay-after-create-s).")
    ] = 0.0,
    delay_after_create_s: Annotated[
        float, typer.Option(help="Extra seconds such a create's answer is held.")
    ] = SimulatorConfig().delay_after_create_s,
    sender_mps: Annotated[
        float | None,
        typer.Option(help="Segments per second each sender sends; more wait 'queued'."),
    ] = None,
    sender_queue_s: Annotated[
        float, typer.Option(help="Seconds of backlog a sender's queue holds, then 21611.")
    ] = SimulatorConfig().sender_queue_s,
    callback_disorder: Annotated[
        bool, typer.Option(help="Deliver status callbacks late and out of order.")
    ] = False,
    callback_retries: Annotated[
        int, typer.Option(help="Retries of a status callback that failed (error or non-2xx).")
    ] = 0,
) -> None:
    """Serve a Twilio-compatible API on loopback until Ctrl-C (for tests and trying out)."""
    # Every option but --port and --owned-number is named after its SimulatorConfig field.
    options = locals()
    config = {f.name: options[f.name] for f in fields(SimulatorConfig) if f.name in options}
    if owned_number:
        config["owned_numbers"] = frozenset(owned_number)
    try:  # one clear line for an impossible setting, before any port is opened
        SimulatorConfig(**config)  # type: ignore[arg-type]
    except ValueError as error:
        fail(str(error))
    from smslink.simulator import main as serve_simulator  # only this command serves

    serve_simulator(port=port, **config)  # type: ignore[arg-type]
