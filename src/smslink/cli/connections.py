"""`smslink connection ...`: what an administrator configures, and the Test button."""

from __future__ import annotations

import asyncio
import math
import os
import re
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from smslink.base_url import check_base_url, display_base_url
from smslink.cli.common import EXIT_FAILED, command, console, fail, print_fields, store_session
from smslink.models import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_ATTEMPTS,
    DEFAULT_POLL_INTERVAL_MS,
    DEFAULT_REGION,
    DEFAULT_REQUEST_TIMEOUT_S,
    Connection,
)
from smslink.names import check_name
from smslink.phone import check_region
from smslink.secrets import mask
from smslink.twilio import ApiError, NotTwilio, TwilioClient, TwilioError

app = typer.Typer(
    help="Twilio connections: account, credentials, sender and polling.", rich_markup_mode=None
)

TOKEN_ENV = "TWILIO_AUTH_TOKEN"
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
#: E.164, a short code (5-6 digits) or an alphanumeric sender ID (up to 11, with a letter).
_SENDER = re.compile(r"\+[1-9]\d{6,14}|\d{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")

_MPS_HELP = (
    "Most message segments per second from this sender (a US long code: 1, toll-free: 3, "
    "short code: 100); 0 means no cap."
)
_TIMEOUT_HELP = "Seconds to wait for Twilio's answer to one request before it counts as lost."


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
) -> None:
    """Add a connection. The auth token comes from $TWILIO_AUTH_TOKEN or a hidden prompt."""
    try:
        check_name(name, "connection name")
    except ValueError as error:
        fail(str(error))
    connection = _checked(
        Connection(
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
        )
    )
    connection.auth_token = _read_token(api_key_sid is not None)
    with store_session() as store:
        store.add_connection(connection)
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
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Replace the secret ($TWILIO_AUTH_TOKEN or prompt).")
    ] = False,
) -> None:
    """Change some settings of a connection; the rest stay as they are."""
    with store_session() as store:
        connection = store.get_connection(name)
        changes = {
            "account_sid": account_sid,
            "from_number": from_number,
            "messaging_service_sid": messaging_service_sid,
            "api_key_sid": api_key_sid,
            "base_url": base_url,
            "poll_interval_ms": poll_interval_ms,
            "poll_attempts": poll_attempts,
            "concurrency": concurrency,
            "region": region,
            "max_segments_per_second": max_segments_per_second,
            "request_timeout_s": request_timeout,
        }
        for field_name, value in changes.items():
            if value is not None:
                setattr(connection, field_name, value if value != "" else None)
        connection = _checked(connection)
        if new_token:
            connection.auth_token = _read_token(connection.api_key_sid is not None)
        store.update_connection(connection)
    console.print(f"Updated connection {name}.")


def _checked(c: Connection) -> Connection:
    """The connection with its region normalised, or a clear failure naming the option."""
    if not _ACCOUNT_SID.fullmatch(c.account_sid or ""):
        fail(f"--account-sid {c.account_sid!r} is not an Account SID: AC followed by 32 hex digits")
    if not c.from_number and not c.messaging_service_sid:
        fail("give a sender: --from +1... (or a short code / sender ID) or --messaging-service-sid")
    if c.from_number and not _SENDER.fullmatch(c.from_number):
        fail(
            f"--from {c.from_number!r} is not a sender Twilio accepts: use an E.164 number "
            "(+14155550123), a short code (12345) or an alphanumeric sender ID (up to 11)"
        )
    if c.messaging_service_sid and not _SERVICE_SID.fullmatch(c.messaging_service_sid):
        fail(f"--messaging-service-sid {c.messaging_service_sid!r}: MG followed by 32 hex digits")
    if c.api_key_sid and not _API_KEY_SID.fullmatch(c.api_key_sid):
        fail(f"--api-key-sid {c.api_key_sid!r}: SK followed by 32 hex digits")
    try:
        c.base_url = check_base_url(c.base_url)
    except ValueError as error:
        fail(f"--base-url: {error}")
    try:
        c.region = check_region(c.region)
    except ValueError as error:
        fail(f"--region: {error}")
    mps = c.max_segments_per_second
    if mps is not None and not (math.isfinite(mps) and mps >= 0):
        fail(
            f"--max-segments-per-second {mps:g}: give segments per second above 0 "
            "(e.g. 1 for a US long code), or 0 for no cap"
        )
    if mps == 0:  # 0 is how `update` takes a cap away; None is what the store keeps for it
        c.max_segments_per_second = None
    if not (math.isfinite(c.request_timeout_s) and c.request_timeout_s > 0):
        fail(f"--request-timeout {c.request_timeout_s:g}: give a number of seconds above 0")
    return c


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
    with store_session() as store:
        connections = store.list_connections()
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
            display_base_url(c.base_url),
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
    with store_session() as store:
        c = store.get_connection(name)
    print_fields(
        [
            ("name", c.name),
            ("account SID", c.account_sid),
            ("auth", f"API key {c.api_key_sid}" if c.api_key_sid else "account auth token"),
            ("secret", mask(c.auth_token)),
            ("from", c.from_number or ""),
            ("messaging service", c.messaging_service_sid or ""),
            ("base URL", display_base_url(c.base_url)),
            ("poll interval", f"{c.poll_interval_ms} ms"),
            ("poll attempts", str(c.poll_attempts)),
            ("concurrency", str(c.concurrency)),
            ("max segments/s", _rate_cap(c, "no cap")),
            ("request timeout", f"{c.request_timeout_s:g} s"),
            ("region", c.region),
        ]
    )


def _rate_cap(c: Connection, none: str) -> str:
    cap = c.max_segments_per_second
    return none if cap is None else f"{cap:g}"


@app.command("remove")
def remove(name: str) -> None:
    """Remove a connection that no touchpoint uses."""
    with store_session() as store:
        store.remove_connection(name)
    console.print(f"Removed connection {name}.")


@app.command("test")
def test(
    name: str,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the connection and for the answer.", min=0.1)
    ] = 15.0,
) -> None:
    """The Test button: a read-only account query that proves URL and credentials work."""
    with store_session() as store:
        connection = store.get_connection(name)
    try:
        account = asyncio.run(_fetch_account(connection, timeout))
    except NotTwilio as error:  # it says itself that the answer is not Twilio's
        fail(str(error), EXIT_FAILED)
    except ApiError as error:
        fail(
            f"Twilio refused: error {error.code or error.status}: {error.message}"
            + (f" ({error.more_info})" if error.more_info else ""),
            EXIT_FAILED,
        )
    except TwilioError as error:
        fail(
            f"cannot reach Twilio at {display_base_url(connection.base_url)}: {error}", EXIT_FAILED
        )
    status = account.get("status", "unknown")
    console.print(
        Text.assemble(
            ("OK", "green"),
            f": {display_base_url(connection.base_url)} answers; account {account.get('sid')} "
            f"({account.get('friendly_name', '')}) is {status}.",
        )
    )
    if status != "active":
        fail(f"the account is {status}, not active: messages will not go out", EXIT_FAILED)


async def _fetch_account(connection: Connection, timeout_s: float) -> dict[str, object]:
    client = TwilioClient.for_connection(
        connection, connect_timeout_s=timeout_s, read_timeout_s=timeout_s
    )
    async with client:
        return await client.fetch_account()
