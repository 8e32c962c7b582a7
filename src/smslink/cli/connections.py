"""`smslink connection ...`: what an administrator configures, and the Test button."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from smslink.cli.common import EXIT_FAILED, console, fail, print_fields, session
from smslink.cli.render import command
from smslink.domain.models import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_ATTEMPTS,
    DEFAULT_POLL_INTERVAL_MS,
    DEFAULT_REGION,
    DEFAULT_REQUEST_TIMEOUT_S,
    Connection,
)

if TYPE_CHECKING:
    from smslink.app.connections import ConnectionView

app = typer.Typer(
    help="Twilio connections: account, credentials, sender and polling.", rich_markup_mode=None
)

TOKEN_ENV = "TWILIO_AUTH_TOKEN"
#: How a secret is shown: fixed, so it reveals neither its length nor any character (Twilio's
#: console shows none of the token either; connections are told apart by name and SID).
MASK = "********"

_MPS_HELP = (
    "Most message segments per second from this sender (a US long code: 1, toll-free: 3, "
    "short code: 100); 0 means no cap."
)
_TIMEOUT_HELP = "Seconds to wait for Twilio's answer to one request before it counts as lost."
_CALLBACK_HELP = (
    "Public https address of `smslink serve` (e.g. https://sms.example.com): Twilio then "
    "posts every status change to <URL>/twilio/status/<name>, and polling becomes the "
    "fallback. Not with an API key."
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the connection.")],
    account_sid: Annotated[str, typer.Option(help="Twilio Account SID (AC...).")],
    from_number: Annotated[
        str | None, typer.Option("--from", help="Sender: E.164 number, short code or sender ID.")
    ] = None,
    messaging_service_sid: Annotated[
        str | None, typer.Option(help="Send through a Messaging Service (MG...) instead.")
    ] = None,
    api_key_sid: Annotated[
        str | None,
        typer.Option(help="Authenticate with an API key (SK...); its secret is the token."),
    ] = None,
    base_url: Annotated[str, typer.Option(help="Twilio API base URL.")] = DEFAULT_BASE_URL,
    poll_interval_ms: Annotated[
        int, typer.Option(help="Milliseconds between status polls.", min=100)
    ] = DEFAULT_POLL_INTERVAL_MS,
    poll_attempts: Annotated[
        int, typer.Option(help="Polls per message before reporting 'sent'.", min=1)
    ] = DEFAULT_POLL_ATTEMPTS,
    concurrency: Annotated[
        int, typer.Option(help="Most API requests in flight at once.", min=1, max=1000)
    ] = DEFAULT_CONCURRENCY,
    region: Annotated[
        str, typer.Option(help="Country for numbers written without +.")
    ] = DEFAULT_REGION,
    max_segments_per_second: Annotated[
        float | None, typer.Option("--max-segments-per-second", "--mps", help=_MPS_HELP)
    ] = None,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help=_TIMEOUT_HELP)
    ] = DEFAULT_REQUEST_TIMEOUT_S,
    callback_base_url: Annotated[
        str | None, typer.Option("--callback-base-url", help=_CALLBACK_HELP)
    ] = None,
) -> None:
    """Add a connection. The auth token comes from $TWILIO_AUTH_TOKEN or a hidden prompt."""
    connection = Connection(
        name=name,
        account_sid=account_sid,
        auth_token="",
        from_number=from_number,
        messaging_service_sid=messaging_service_sid,
        api_key_sid=api_key_sid,
        base_url=base_url,
        poll_interval_ms=poll_interval_ms,
        poll_attempts=poll_attempts,
        concurrency=concurrency,
        region=region,
        max_segments_per_second=max_segments_per_second,
        request_timeout_s=request_timeout,
        callback_base_url=callback_base_url,
    )
    with session() as smslink:  # every other setting first, then the secret
        smslink.connections.check_new(connection)
    connection.auth_token = _read_token(api_key_sid is not None)
    with session() as smslink:
        smslink.connections.add(connection)
    console.print(f"Added connection {name}. Try it: {command('connection', 'test', name)}")


@app.command("update")
def update_(
    name: Annotated[str, typer.Argument(help="The connection to change.")],
    account_sid: Annotated[str | None, typer.Option()] = None,
    from_number: Annotated[str | None, typer.Option("--from")] = None,
    messaging_service_sid: Annotated[
        str | None, typer.Option(help="MG...; pass '' to send from --from instead.")
    ] = None,
    api_key_sid: Annotated[
        str | None, typer.Option(help="SK...; pass '' to use the account's own token.")
    ] = None,
    base_url: Annotated[str | None, typer.Option()] = None,
    poll_interval_ms: Annotated[int | None, typer.Option(min=100)] = None,
    poll_attempts: Annotated[int | None, typer.Option(min=1)] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    region: Annotated[str | None, typer.Option()] = None,
    max_segments_per_second: Annotated[
        float | None, typer.Option("--max-segments-per-second", "--mps", help=_MPS_HELP)
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option("--request-timeout", help=_TIMEOUT_HELP)
    ] = None,
    callback_base_url: Annotated[
        str | None,
        typer.Option(
            "--callback-base-url", help=_CALLBACK_HELP + " Pass '' to turn callbacks off."
        ),
    ] = None,
    no_callbacks: Annotated[
        bool,
        typer.Option("--no-callbacks", help="Turn status callbacks off: polling only."),
    ] = False,
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Replace the secret ($TWILIO_AUTH_TOKEN or prompt).")
    ] = False,
) -> None:
    """Change some settings of a connection; the rest stay as they are."""
    from smslink.app.connections import ConnectionChanges

    if no_callbacks and callback_base_url is not None:
        fail("give either --callback-base-url or --no-callbacks, not both")
    changes = ConnectionChanges(
        account_sid=account_sid,
        from_number=from_number,
        messaging_service_sid=messaging_service_sid,
        api_key_sid=api_key_sid,
        base_url=base_url,
        poll_interval_ms=poll_interval_ms,
        poll_attempts=poll_attempts,
        concurrency=concurrency,
        region=region,
        max_segments_per_second=max_segments_per_second,
        request_timeout_s=request_timeout,
        callback_base_url="" if no_callbacks else callback_base_url,
    )
    with session() as smslink:
        current = smslink.connections.show(name)
        if new_token:
            # Checked first, as on `add`: the new settings must stand before the secret.
            smslink.connections.check(name, changes)
            api_key = current.api_key_sid if api_key_sid is None else api_key_sid
            changes = replace(changes, auth_token=_read_token(bool(api_key)))
        smslink.connections.update(name, changes)
    console.print(f"Updated connection {name}.")


def _read_token(api_key: bool) -> str:
    """The secret, never from a command-line argument (it would land in shell history)."""
    what = "API key secret" if api_key else "auth token"
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    if not sys.stdin.isatty():
        fail(f"set {TOKEN_ENV} to the {what} (it is never taken as a command-line argument)")
    # default="": an empty answer comes back (and is refused below) instead of the prompt
    # asking again forever without saying why.
    token = typer.prompt(f"Twilio {what}", hide_input=True, default="", show_default=False)
    if not token.strip():
        fail(f"the {what} is empty: paste it from the Twilio console (it is not echoed)")
    return token.strip()


@app.command("list")
def list_() -> None:
    """List connections (secrets masked)."""
    from rich.table import Table

    with session() as smslink:
        connections = smslink.connections.list()
    if not connections:
        console.print(
            "No connections yet: smslink connection add NAME --account-sid AC... --from +1..."
        )
        return
    table = Table()
    # Identifiers are copied into other commands and the Twilio console: shown whole,
    # never cut; the settings columns wrap instead when the terminal is narrow.
    for header, values in (
        ("name", [c.name for c in connections]),
        ("account", [c.account_sid for c in connections]),
        ("sender", [c.sender for c in connections]),
    ):
        table.add_column(header, no_wrap=True, min_width=max(map(len, [header, *values])))
    for header in ("base URL", "poll", "concurrency", "segments/s", "timeout", "region"):
        table.add_column(header, overflow="fold")
    for c in connections:
        table.add_row(
            c.name,
            c.account_sid,
            c.sender,
            c.base_url,
            f"{c.poll_interval_ms} ms x {c.poll_attempts}",
            str(c.concurrency),
            _rate_cap(c, "-"),
            f"{c.request_timeout_s:g} s",
            c.region,
        )
    console.print(table)


@app.command("show")
def show(name: str) -> None:
    """Show one connection (the token masked)."""
    with session() as smslink:
        c = smslink.connections.show(name)
    print_fields(
        [
            ("name", c.name),
            ("account SID", c.account_sid),
            ("auth", f"API key {c.api_key_sid}" if c.api_key_sid else "account auth token"),
            ("secret", MASK if c.secret_set else ""),
            ("from", c.from_number or ""),
            ("messaging service", c.messaging_service_sid or ""),
            ("base URL", c.base_url),
            ("poll interval", f"{c.poll_interval_ms} ms"),
            ("poll attempts", str(c.poll_attempts)),
            ("concurrency", str(c.concurrency)),
            ("max segments/s", _rate_cap(c, "no cap")),
            ("request timeout", f"{c.request_timeout_s:g} s"),
            ("region", c.region),
            ("callback base URL", c.callback_base_url or "none (polling only)"),
            ("status callbacks to", c.status_callback_url or ""),
        ]
    )


def _rate_cap(c: ConnectionView, none: str) -> str:
    cap = c.max_segments_per_second
    return none if cap is None else f"{cap:g}"


@app.command("remove")
def remove(name: str) -> None:
    """Remove a connection that no touchpoint uses."""
    with session() as smslink:
        smslink.connections.remove(name)
    console.print(f"Removed connection {name}.")


@app.command("test")
def test(
    name: str,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the connection and for the answer.", min=0.1)
    ] = 15.0,
) -> None:
    """The Test button: a read-only account query that proves URL and credentials work."""
    from smslink.app.connections import ConnectionTestOutcome

    with session() as smslink:
        result = smslink.connections.test(name, timeout_s=timeout)
    match result.outcome:
        case ConnectionTestOutcome.REFUSED:
            fail(
                f"Twilio refused: error {result.code}: {result.message}"
                + (f" ({result.more_info})" if result.more_info else ""),
                EXIT_FAILED,
            )
        case ConnectionTestOutcome.NOT_TWILIO:  # the message says itself that it is not Twilio's
            fail(result.message, EXIT_FAILED)
        case ConnectionTestOutcome.UNREACHABLE:
            fail(f"cannot reach Twilio at {result.base_url}: {result.message}", EXIT_FAILED)
    console.print(
        Text.assemble(
            ("OK", "green"),
            f": {result.base_url} answers; account {result.account_sid} "
            f"({result.friendly_name}) is {result.account_status}.",
        )
    )
    if result.outcome is ConnectionTestOutcome.INACTIVE:
        fail(
            f"the account is {result.account_status}, not active: messages will not go out",
            EXIT_FAILED,
        )
