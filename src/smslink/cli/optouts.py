"""`smslink optouts ...`: recipients who replied STOP to a sender, which runs skip.

Opt-outs are learned from Twilio's 21610 answers during runs, and from the recipients' own
STOP replies when a number's incoming-message webhook points at `smslink serve` (a START
removes those by itself); these commands show them and forget one when the recipient has
opted back in (replied START), so runs send to them again.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from smslink.cli.common import EXIT_FAILED, console, fail, session
from smslink.domain.keywords import inbound_keyword
from smslink.domain.models import OptOut

app = typer.Typer(
    help="Opt-outs: recipients who replied STOP to a sender; runs skip them.",
    rich_markup_mode=None,
)

_SENDER_HELP = "Only this sender: a From number, short code, sender ID or Messaging Service SID."


@app.command("list")
def list_(
    sender: Annotated[str | None, typer.Option("--sender", help=_SENDER_HELP)] = None,
) -> None:
    """List opt-outs: who replied STOP to which sender, since when, and how smslink knows."""
    from rich.table import Table

    from smslink.app.optouts import read_sender

    with session() as smslink:
        found = smslink.optouts.list(sender)
        wanted = f" for {read_sender(sender)}" if sender else ""
    if not found:
        console.print(
            f"No opt-outs recorded{wanted}: they appear when Twilio answers 21610 to a send, "
            "or when a recipient's STOP reaches the incoming-message webhook."
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
    reason: Annotated[
        str | None,
        typer.Option(help="Why (kept with the removal, e.g. 'replied START on 2026-11-29')."),
    ] = None,
) -> None:
    """Forget an opt-out after the recipient opted back in (replied START): runs send again."""
    by = f"{getpass.getuser()} (command line)"
    with session() as smslink:
        removal = smslink.optouts.remove(phone, sender, reason=reason, by=by)
    where = f"from {removal.sender}" if removal.sender else "from any sender"
    if not removal.removed:
        fail(
            f"no opt-out of {removal.phone} {where} is recorded (see: smslink optouts list)",
            EXIT_FAILED,
        )
    plural = "" if removal.removed == 1 else "s"
    console.print(
        f"Removed {removal.removed} opt-out{plural} of {removal.phone} {where}; "
        "runs will send to them again."
    )


def _source(optout: OptOut) -> str:
    """How smslink learned it, in words."""
    keyword = inbound_keyword(optout.source)
    if keyword is not None:
        return f"replied {keyword}"
    said = "Twilio 21610" if optout.source == "twilio" else optout.source
    return f"{said}, run {optout.run_id}" if optout.run_id is not None else said
