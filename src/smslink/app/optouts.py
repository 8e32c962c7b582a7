"""Opt-outs: recipients who replied STOP to a sender, which every run skips.

Runs learn them from Twilio's 21610 answers; people list them and forget one when the
recipient has opted back in (replied START). Phones and senders are read as people type
them ("+1 (555) 010-0123"), and matched in the form the store keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smslink.domain.errors import InvalidInput, Problem
from smslink.domain.models import DEFAULT_REGION, OptOut
from smslink.domain.phone import PhoneError, normalize_phone
from smslink.store import Store

#: Characters people put between digits ("+1 (500) 555-0006"); what is left decides the kind.
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")


@dataclass(frozen=True, slots=True)
class OptOutRemoval:
    phone: str  # E.164
    sender: str | None  # as connections name it; None: every sender
    removed: int


class OptOuts:
    """The opt-outs of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self, sender: str | None = None) -> list[OptOut]:
        """Every opt-out, or only `sender`'s, oldest first within each sender."""
        return self._store.catalogue.list_optouts(read_sender(sender) if sender else None)

    def remove(self, phone: str, sender: str | None = None) -> OptOutRemoval:
        """Forget `phone`'s opt-out from `sender` (every sender when None)."""
        number = read_phone(phone)
        wanted = read_sender(sender) if sender else None
        return OptOutRemoval(number, wanted, self._store.catalogue.remove_optouts(number, wanted))


def read_phone(raw: str, field: str = "phone") -> str:
    """A recipient as the deliveries hold it (E.164), read like an audience's phone column."""
    try:
        return normalize_phone(raw, DEFAULT_REGION)
    except PhoneError as error:
        raise InvalidInput(problems=[Problem(field, str(error))]) from None


def read_sender(raw: str) -> str:
    """A sender as connections name it: phone numbers normalised to E.164, since that is the
    form a connection's From number has; short codes, sender IDs and MG... SIDs as given."""
    text = raw.strip()
    compact = _SEPARATORS.sub("", text)
    if re.search(r"[A-Za-z]", text) or re.fullmatch(r"\d{5,6}", compact):
        return text
    return read_phone(text, "sender")
