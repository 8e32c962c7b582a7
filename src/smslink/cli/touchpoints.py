"""`smslink touchpoint ...`: the message, its field mapping, and a preview before sending."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from smslink.cli.common import console, fail, session
from smslink.cli.render import command
from smslink.cli.reports import print_totals
from smslink.domain.models import Touchpoint

app = typer.Typer(
    help="Touchpoints: a message with <Placeholders> and its field mapping.", rich_markup_mode=None
)

_ENCODING_HELP = "Text encoding of a CSV that is not UTF-8, e.g. cp1252."


def parse_mappings(pairs: list[str]) -> dict[str, str]:
    """`--map FirstName=first_name` pairs as a dict, failing clearly on a malformed one."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        placeholder, sep, column = pair.partition("=")
        placeholder, column = placeholder.strip().strip("<>"), column.strip()
        if not sep or not placeholder or not column:
            fail(f"--map {pair!r}: write PLACEHOLDER=COLUMN, e.g. --map FirstName=first_name")
        if placeholder in mapping:
            fail(f"--map: <{placeholder}> is mapped twice")
        mapping[placeholder] = column
    return mapping


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the touchpoint.")],
    connection: Annotated[str, typer.Option(help="The connection that sends it.")],
    message: Annotated[str, typer.Option(help="The text; <Field> marks a placeholder (max 5).")],
    phone: Annotated[str, typer.Option(help="The audience column holding the phone number.")],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="PLACEHOLDER=COLUMN, once per placeholder."),
    ] = None,
) -> None:
    """Add a touchpoint; every placeholder must be mapped to an audience column."""
    touchpoint = Touchpoint(
        name=name,
        connection=connection,
        message=message,
        phone_column=phone.strip(),
        mapping=parse_mappings(map_ or []),
    )
    with session() as smslink:
        smslink.touchpoints.add(touchpoint)
    console.print(
        f"Added touchpoint {name}. Preview it: "
        + command("touchpoint", "preview", name, "--input", "audience.csv")
    )


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The touchpoint to change.")],
    connection: Annotated[str | None, typer.Option(help="Send it through this connection.")] = None,
    message: Annotated[str | None, typer.Option(help="The new text.")] = None,
    phone: Annotated[str | None, typer.Option(help="The phone number column.")] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="PLACEHOLDER=COLUMN; given at all, it replaces the whole mapping."
        ),
    ] = None,
) -> None:
    """Change a touchpoint; runs already started keep the message they started with."""
    from smslink.app.touchpoints import TouchpointChanges

    changes = TouchpointChanges(
        connection=connection,
        message=message,
        phone_column=phone,
        mapping=parse_mappings(map_) if map_ else None,
    )
    with session() as smslink:
        updated = smslink.touchpoints.update(name, changes)
    console.print(f"Updated touchpoint {name}.")
    if updated.dropped:
        console.print("No longer mapped (not in the message): " + ", ".join(updated.dropped))


@app.command("list")
def list_() -> None:
    """List touchpoints."""
    from rich.table import Table

    with session() as smslink:
        touchpoints = smslink.touchpoints.list()
    if not touchpoints:
        console.print("No touchpoints yet: smslink touchpoint add NAME --connection C ...")
        return
    table = Table()
    table.add_column("name", no_wrap=True, min_width=max(len(t.name) for t in touchpoints))
    for header in ("connection", "phone column", "message"):
        table.add_column(header, overflow="fold")
    for t in touchpoints:
        table.add_row(t.name, t.connection, t.phone_column, _shorten(t.message))
    console.print(table)


@app.command("show")
def show(name: str) -> None:
    """Show a touchpoint with its field mapping."""
    from rich.table import Table

    with session() as smslink:
        t = smslink.touchpoints.show(name)
    console.print(Text.assemble((t.name, "bold"), f" (connection {t.connection})"))
    console.print(f"message: {t.message}")
    table = Table("field", "audience column")
    table.add_row("Phone number", t.phone_column)
    for placeholder, column in t.mapping.items():
        table.add_row(f"<{placeholder}>", column)
    console.print(table)


@app.command("remove")
def remove(name: str) -> None:
    """Remove a touchpoint (runs that used it keep their own copy of the message)."""
    with session() as smslink:
        smslink.touchpoints.remove(name)
    console.print(f"Removed touchpoint {name}.")


@app.command("preview")
def preview(
    name: str,
    input_: Annotated[Path, typer.Option("--input", help="Audience file (.csv or .jsonl).")],
    limit: Annotated[int, typer.Option(help="Messages to show.", min=0)] = 5,
    encoding: Annotated[str | None, typer.Option(help=_ENCODING_HELP)] = None,
) -> None:
    """Show rendered messages, encoding and segments, and totals; sends nothing."""
    from rich.table import Table

    with session() as smslink:
        shown = smslink.touchpoints.preview(name, input_, encoding=encoding, limit=limit)
    if limit:
        table = Table("record", "to", "message", "encoding", "segments")
        for row in shown.rows:
            table.add_row(str(row.record), row.to, row.body, row.encoding, str(row.segments))
        console.print(table)
    print_totals(shown.totals)
    if shown.totals.records == 0:
        console.print(f"{input_.name} has no records: a send would have nothing to send.")


def _shorten(text: str, width: int = 50) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
