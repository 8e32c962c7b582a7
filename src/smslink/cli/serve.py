"""`smslink serve`: the web pages and REST API, and `smslink user ...`: who may sign in."""

from __future__ import annotations

import ipaddress
import os
import sys
from contextlib import ExitStack
from typing import Annotated

import typer

from smslink.cli.collector import collect_for_serving
from smslink.cli.common import console, fail, session
from smslink.domain.models import Role

users_app = typer.Typer(help="Users who sign in to the web pages.", rich_markup_mode=None)

PASSWORD_ENV = "SMSLINK_PASSWORD"


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Also run the built-in Twilio simulator, with a 'demo' connection and touchpoint.",
        ),
    ] = False,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(help="Send session cookies over HTTPS only (default: when not on loopback)."),
    ] = None,
) -> None:
    """Serve the pages and the REST API (OpenAPI description at /docs) until Ctrl-C."""
    collect_for_serving()  # a long-running service keeps Python's collector (collector.py)
    import uvicorn

    from smslink.app import Config
    from smslink.web.app import ServeOptions, create_app

    loopback = _is_loopback(host)
    with session() as smslink:
        if not loopback and smslink.users.count() == 0:
            fail(
                f"{host} is reachable from other machines and nobody can sign in yet: whoever "
                "opened the page first would become administrator. Create the first one with "
                "`smslink user add NAME --role admin`, or serve on 127.0.0.1"
            )
    with ExitStack() as stack:
        if demo:
            from smslink.cli.demo import configure_demo, demo_simulator

            base_url = stack.enter_context(demo_simulator())
            with session() as smslink:
                configure_demo(smslink, base_url)
            console.print(f"Twilio simulator on {base_url}; connection and touchpoint 'demo' ready")
        options = ServeOptions(
            config=Config.from_environment(),
            secure_cookies=not loopback if secure_cookies is None else secure_cookies,
            demo=demo,
        )
        console.print(f"smslink on http://{_hostport(host, port)}/ (Ctrl-C stops it)")
        uvicorn.run(create_app(options), host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@users_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The name they sign in with.")],
    role: Annotated[
        Role, typer.Option(help="admin: connections and users; marketer: the rest.")
    ] = Role.MARKETER,
) -> None:
    """Add a user. The password comes from $SMSLINK_PASSWORD or a hidden prompt (twice)."""
    password = _read_password()
    with session() as smslink:
        user = smslink.users.add(name, password, role)
    console.print(f"Added {user.role} {user.name}.")


@users_app.command("list")
def user_list() -> None:
    """List users and their roles."""
    with session() as smslink:
        users = smslink.users.list()
    if not users:
        console.print("No users yet: smslink user add NAME --role admin")
        return
    for user in users:
        state = " (disabled)" if user.disabled else ""
        console.print(f"{user.name}  {user.role}{state}")


def _read_password() -> str:
    password = os.environ.get(PASSWORD_ENV, "")
    if password:
        return password
    if not sys.stdin.isatty():
        fail(f"set {PASSWORD_ENV} to the password (it is never taken as a command-line argument)")
    first = typer.prompt("Password", hide_input=True, default="", show_default=False)
    again = typer.prompt("Password again", hide_input=True, default="", show_default=False)
    if first != again:
        fail("the two passwords differ")
    return first
