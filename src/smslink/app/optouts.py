"""Opt-outs: recipients who replied STOP to a sender, which every run skips.

Runs learn them from Twilio's 21610 answers; people list and search them, and forget one
when the recipient has opted back in (replied START). Phones and senders are read as people
type them ("+1 (555) 010-0123"), and matched in the form the store keeps.

A removal is never silent: the store keeps each removed opt-out with who removed it, when
and why (`removals`). The pages and the API require the reason; the command line gives
none yet, and its removals are kept with no user and no reason.
"""

from __future__ import annotations

import builtins
import re
import unicodedata
from dataclasses import dataclass

from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import DEFAULT_REGION, OptOut
from smslink.domain.phone import PhoneError, normalize_phone
from smslink.store import Store
from smslink.store.catalogue import RemovedOptOut

__all__ = [
    "MAX_REASON_CHARS",
    "OptOutRemoval",
    "OptOutSearch",
    "OptOuts",
    "RemovedOptOut",
    "read_phone",
    "read_sender",
]

#: Characters people put between digits ("+1 (500) 555-0006"); what is left decides the kind.
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
#: A reason is a sentence ("replied START on 3 May"), not a letter.
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class OptOutRemoval:
    phone: str  # E.164
    sender: str | None  # as connections name it; None: every sender
    removed: int


@dataclass(frozen=True, slots=True)
class OptOutSearch:
    """The opt-outs a search found: the first `limit` of them, and how many there are."""

    phone: str | None  # as read (E.164), when the search named one
    sender: str | None  # as read, when the search named one
    optouts: list[OptOut]
    total: int


class OptOuts:
    """The opt-outs of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self, sender: str | None = None) -> list[OptOut]:
        """Every opt-out, or only `sender`'s, oldest first within each sender."""
        return self._store.catalogue.list_optouts(read_sender(sender) if sender else None)

    def search(
        self, phone: str | None = None, sender: str | None = None, *, limit: int = 200
    ) -> OptOutSearch:
        """The opt-outs of `phone` (in any format) from `sender`; either may be empty (or
        None) for all. InvalidInput for a phone or sender that cannot be read."""
        problems: list[Problem] = []
        wanted_phone = wanted_sender = None
        if phone and phone.strip():
            try:
                wanted_phone = read_phone(phone)
            except InvalidInput as error:
                problems += error.problems
        if sender and sender.strip():
            try:
                wanted_sender = read_sender(sender)
            except InvalidInput as error:
                problems += error.problems
        if problems:
            raise InvalidInput(problems=problems)
        catalogue = self._store.catalogue
        return OptOutSearch(
            wanted_phone,
            wanted_sender,
            catalogue.list_optouts(wanted_sender, phone=wanted_phone, limit=max(limit, 0)),
            catalogue.count_optouts(wanted_sender, phone=wanted_phone),
        )

    def senders(self) -> builtins.list[str]:
        """Every sender someone opted out of (what a search can filter by)."""
        return self._store.catalogue.optout_senders()

    def remove(
        self,
        phone: str,
        sender: str | None = None,
        *,
        reason: str | None = None,
        by: str | None = None,
    ) -> OptOutRemoval:
        """Forget `phone`'s opt-out from `sender` (every sender when None), keeping who
        removed it (`by`, a user's name) and why. A face that asks for a reason passes what
        was typed: an empty one is refused (InvalidInput on `reason`)."""
        problems: list[Problem] = []
        number = wanted = None
        try:
            number = read_phone(phone)
        except InvalidInput as error:
            problems += error.problems
        if sender is not None and sender.strip():
            try:
                wanted = read_sender(sender)
            except InvalidInput as error:
                problems += error.problems
        if reason is not None:
            reason = reason.strip()
            problems += _reason_problems(reason)
        if problems or number is None:
            raise InvalidInput(problems=problems)
        removed = self._store.catalogue.remove_optouts(number, wanted, removed_by=by, reason=reason)
        return OptOutRemoval(number, wanted, removed)

    def removals(
        self, phone: str | None = None, sender: str | None = None, *, limit: int = 20
    ) -> builtins.list[RemovedOptOut]:
        """The latest removals first (only `phone`'s and `sender`'s when given)."""
        return self._store.catalogue.list_optout_removals(
            phone=read_phone(phone) if phone and phone.strip() else None,
            sender=read_sender(sender) if sender and sender.strip() else None,
            limit=max(limit, 0),
        )


def read_phone(raw: str, field: str = "phone") -> str:
    """A recipient as the deliveries hold it (E.164), read like an audience's phone column."""
    try:
        return normalize_phone(raw, DEFAULT_REGION)
    except PhoneError as error:
        raise InvalidInput(problems=[Problem(field, error.args[0])]) from None


def read_sender(raw: str) -> str:
    """A sender as connections name it: phone numbers normalised to E.164, since that is the
    form a connection's From number has; short codes, sender IDs and MG... SIDs as given."""
    text = raw.strip()
    compact = _SEPARATORS.sub("", text)
    if re.search(r"[A-Za-z]", text) or re.fullmatch(r"\d{5,6}", compact):
        if _unprintable(text):
            raise InvalidInput(
                problems=[Problem("sender", say("the sender contains control characters"))]
            )
        return text
    return read_phone(text, "sender")


def _reason_problems(reason: str) -> list[Problem]:
    if not reason:
        return [
            Problem("reason", say("say why the opt-out goes, e.g. the recipient replied START"))
        ]
    if len(reason) > MAX_REASON_CHARS:
        return [
            Problem(
                "reason",
                say(
                    "the reason is %(length)s characters long; keep it under %(limit)s",
                    length=len(reason),
                    limit=MAX_REASON_CHARS,
                ),
            )
        ]
    if _unprintable(reason):
        return [Problem("reason", say("the reason contains control characters: write it as text"))]
    return []


def _unprintable(text: str) -> bool:
    """Control or formatting characters, or lone surrogates: nothing a person typed."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text)
