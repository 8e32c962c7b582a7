"""The `smslink` command: parse, call the application layer, print. No rule lives here."""

from __future__ import annotations

import atexit
import gc
from typing import Annotated

import typer

from smslink import __version__
from smslink.cli import connections, demo, optouts, runs, serve, simulator, touchpoints, workers
from smslink.cli.collector import collect_for_sending

app = typer.Typer(
    name="smslink",
    help="Personalised SMS through Twilio, with every recipient's delivery status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Plain help wraps long option names and defaults instead of cutting them off at 80
    # columns, as the boxed Rich help did.
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"smslink {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Personalised SMS through Twilio, with every recipient's delivery status."""


app.add_typer(connections.app, name="connection")
app.add_typer(touchpoints.app, name="touchpoint")
app.add_typer(runs.app, name="runs")
app.add_typer(optouts.app, name="optouts")
app.command("send")(runs.send)
app.command("demo")(demo.demo)
app.command("simulator")(simulator.simulator)
app.command("serve")(serve.serve)
app.command("worker")(workers.worker)
app.command("workers")(workers.workers)
app.add_typer(serve.users_app, name="user")


def main() -> None:
    collect_for_sending()  # before the command imports what it needs; `serve` resets it
    # A command's work is done (files closed, the store closed) before the interpreter
    # exits; its last collection would only walk every object the imports made to free
    # them a moment before the process does (~0.1 s of CPU after a send: RESULTS §15).
    atexit.register(gc.freeze)
    app()
