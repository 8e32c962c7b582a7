"""`smslink optouts ...`: recipients who replied STOP to a sender, which runs skip.

Opt-outs are learned from Twilio's 21610 answers during runs; these commands show them and
forget one when the recipient has opted back in (replied START), so runs send to them again.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.table import Table

from smslink.cli.common import EXIT_FAILED, console, fail, store_session
from smslink.models import DEFAULT_REGION, OptOut
from smslink.phone import PhoneError, normalize_phone

app = typer.Typer(
    help="Opt-outs: recipients who replied STOP to a sender; runs skip them.", rich_markup_mode=None
)

_SENDER_HELP = "Only this sender: a From number, short code, sender ID or Messaging Service SID."
#: Characters people put between digits ("+1 (500) 555-0006"); what is left decides the kind.
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")


@app.command("list")
def list_(
    sender: Annotated[str | None, typer.Option("--sender", help=_SENDER_HELP)] = None,
) -> None:
    """List opt-outs: who replied STOP to which sender, since when, and how smslink knows."""
    wanted = _sender(sender) if sender else None
    with store_session() as store:
        found = store.list_optouts(wanted)
    if not found:
        console.print(
            "No opt-outs recorded"
            + (f" for {wanted}" if wanted else "")
            + ": they appear when Twilio answers 21610 to a send."
        )
        return
    table = Table("sender", "phone", "since (UTC)", "source")
    for optout in found:
        table.add_row(
            optout.sender,
            optout.phone,
            optout.created_at.strftime("%Y-%m-%d %H:%M"),
            _source(optout),
        )
    console.print(table)


@app.command("remove")
def remove(
    phone: Annotated[str, typer.Argument(help="The recipient, in any format ('+1 (555) ...').")],
    sender: Annotated[
        str | None,
        typer.Option("--sender", help=_SENDER_HELP + " Without it: every sender."),
    ] = None,
) -> None:
    """Forget an opt-out after the recipient opted back in (replied START): runs send again."""
    number = _phone(phone)
    wanted = _sender(sender) if sender else None
    where = f"from {wanted}" if wanted else "from any sender"
    with store_session() as store:
        removed = store.remove_optouts(number, wanted)
    if not removed:
        fail(f"no opt-out of {number} {where} is recorded (see: smslink optouts list)", EXIT_FAILED)
    plural = "" if removed == 1 else "s"
    console.print(
        f"Removed {removed} opt-out{plural} of {number} {where}; runs will send to them again."
    )


def _phone(raw: str) -> str:
    """A recipient as the deliveries hold it (E.164), read like an audience's phone column."""
    try:
        return normalize_phone(raw, DEFAULT_REGION)
    except PhoneError as error:
        fail(str(error))


def _sender(raw: str) -> str:
    """A sender as connections name it: phone numbers normalised to E.164, since that is the
    form a connection's --from has; short codes, sender IDs and MG... SIDs as given."""
    text = raw.strip()
    compact = _SEPARATORS.sub("", text)
    if re.search(r"[A-Za-z]", text) or re.fullmatch(r"\d{5,6}", compact):
        return text
    try:
        return normalize_phone(text, DEFAULT_REGION)
    except PhoneError as error:
        fail(f"--sender: {error}")


def _source(optout: OptOut) -> str:
    """How smslink learned it, in words."""
    said = "Twilio 21610" if optout.source == "twilio" else optout.source
    return f"{said}, run {optout.run_id}" if optout.run_id is not None else said
