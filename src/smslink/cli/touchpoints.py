"""`smslink touchpoint ...`: the message, its field mapping, and a preview before sending."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smslink.audience.readers import AudienceError
from smslink.cli.common import console, fail, store_session
from smslink.engine.prepare import Recipe
from smslink.engine.preview import PreviewTotals, prepared, tally
from smslink.models import Touchpoint
from smslink.template import TemplateError

app = typer.Typer(help="Touchpoints: a message with <Placeholders> and its field mapping.")


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
    try:
        Recipe.from_touchpoint(touchpoint, "US")
    except TemplateError as error:
        fail(str(error))
    with store_session() as store:
        store.add_touchpoint(touchpoint)
    console.print(
        f"Added touchpoint [bold]{name}[/]. Preview it: "
        f"smslink touchpoint preview {name} --input audience.csv"
    )


@app.command("list")
def list_() -> None:
    """List touchpoints."""
    with store_session() as store:
        touchpoints = store.list_touchpoints()
    if not touchpoints:
        console.print("No touchpoints yet: smslink touchpoint add NAME --connection C ...")
        return
    table = Table("name", "connection", "phone column", "message")
    for t in touchpoints:
        table.add_row(t.name, t.connection, t.phone_column, _shorten(t.message))
    console.print(table)


@app.command("show")
def show(name: str) -> None:
    """Show a touchpoint with its field mapping."""
    with store_session() as store:
        t = store.get_touchpoint(name)
    console.print(f"[bold]{t.name}[/] (connection {t.connection})")
    console.print(f"message: {t.message}", markup=False)
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


def print_totals(totals: PreviewTotals) -> None:
    encodings = ", ".join(f"{n} {e}" for e, n in sorted(totals.by_encoding.items()))
    console.print(
        f"{totals.records} records: {totals.messages} messages, {totals.segments} segments"
        + (f" ({encodings})" if encodings else "")
        + f", {totals.problem_count} would fail."
    )
    for number, reason in totals.problems:
        console.print(f"  record {number}: {reason}", markup=False)
    hidden = totals.problem_count - len(totals.problems)
    if hidden > 0:
        console.print(f"  ... and {hidden} more")


def _shorten(text: str, width: int = 50) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
