"""`smslink touchpoint ...`: the message, its field mapping, and a preview before sending."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from smslink.audience.readers import AudienceError
from smslink.cli.common import command, console, fail, store_session
from smslink.engine.prepare import Recipe
from smslink.engine.preview import PreviewTotals, prepared, tally
from smslink.models import Touchpoint
from smslink.names import check_name
from smslink.template import TemplateError, parse_template

app = typer.Typer(
    help="Touchpoints: a message with <Placeholders> and its field mapping.", rich_markup_mode=None
)


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
    try:
        check_name(name, "touchpoint name")
    except ValueError as error:
        fail(str(error))
    touchpoint = _checked(
        Touchpoint(
            name=name,
            connection=connection,
            message=message,
            phone_column=phone.strip(),
            mapping=parse_mappings(map_ or []),
        )
    )
    with store_session() as store:
        store.add_touchpoint(touchpoint)
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
            "--map",
            help="PLACEHOLDER=COLUMN; given at all, it replaces the whole mapping.",
        ),
    ] = None,
) -> None:
    """Change a touchpoint; runs already started keep the message they started with."""
    with store_session() as store:
        touchpoint = store.get_touchpoint(name)
        if connection is not None:
            touchpoint.connection = connection
        if message is not None:
            touchpoint.message = message
        if phone is not None:
            touchpoint.phone_column = phone.strip()
        dropped: list[str] = []
        if map_:
            touchpoint.mapping = parse_mappings(map_)
        elif message is not None:
            # Placeholders the new text no longer has need no column; keep the rest.
            kept = _placeholders(touchpoint.message)
            dropped = [p for p in touchpoint.mapping if p not in kept]
            touchpoint.mapping = {p: c for p, c in touchpoint.mapping.items() if p in kept}
        store.update_touchpoint(_checked(touchpoint))
    console.print(f"Updated touchpoint {name}.")
    if dropped:
        console.print("No longer mapped (not in the message): " + ", ".join(dropped))


def _checked(touchpoint: Touchpoint) -> Touchpoint:
    """The touchpoint when its message and mapping can be sent, else one clear failure."""
    try:
        Recipe.from_touchpoint(touchpoint, "US")
    except TemplateError as error:
        fail(str(error))
    return touchpoint


def _placeholders(message: str) -> tuple[str, ...]:
    try:
        return parse_template(message).placeholders
    except TemplateError as error:
        fail(str(error))


@app.command("list")
def list_() -> None:
    """List touchpoints."""
    with store_session() as store:
        touchpoints = store.list_touchpoints()
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
    with store_session() as store:
        t = store.get_touchpoint(name)
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
    with store_session() as store:
        store.remove_touchpoint(name)
    console.print(f"Removed touchpoint {name}.")


@app.command("preview")
def preview(
    name: str,
    input_: Annotated[Path, typer.Option("--input", help="Audience file (.csv or .jsonl).")],
    limit: Annotated[int, typer.Option(help="Messages to show.", min=0)] = 5,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of a CSV that is not UTF-8, e.g. cp1252.")
    ] = None,
) -> None:
    """Show rendered messages, encoding and segments, and totals; sends nothing."""
    with store_session() as store:
        touchpoint = store.get_touchpoint(name)
        region = store.get_connection(touchpoint.connection).region
    try:
        recipe = Recipe.from_touchpoint(touchpoint, region)
    except TemplateError as error:
        fail(f"touchpoint '{name}': {error}")
    table = Table("record", "to", "message", "encoding", "segments")
    totals = PreviewTotals()
    try:
        for record, delivery in prepared(recipe, input_, encoding):
            encoding_used = tally(totals, record, delivery)
            if encoding_used and table.row_count < limit:
                table.add_row(
                    str(record.number),
                    delivery.to,
                    delivery.body,
                    encoding_used,
                    str(delivery.segments),
                )
    except AudienceError as error:
        fail(str(error))
    if limit:
        console.print(table)
    print_totals(totals)
    if totals.records == 0:
        console.print(f"{input_.name} has no records: a send would have nothing to send.")


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


def _shorten(text: str, width: int = 50) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
