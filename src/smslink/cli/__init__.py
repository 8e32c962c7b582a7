"""The `smslink` command: parse, call the engine, print. No logic of its own lives here."""

from __future__ import annotations

import typer

from smslink.cli import connections, demo, optouts, runs, touchpoints

app = typer.Typer(
    name="smslink",
    help="Personalised SMS through Twilio, with every recipient's delivery status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(connections.app, name="connection")
app.add_typer(touchpoints.app, name="touchpoint")
app.add_typer(runs.app, name="runs")
app.add_typer(optouts.app, name="optouts")
app.command("send")(runs.send)
app.command("demo")(demo.demo)
app.command("simulator")(demo.simulator)


def main() -> None:
    app()
