"""Opt-outs: recipients who replied STOP to a sender, which every run skips.

Runs learn them from Twilio's 21610 answers; people list and search them, and forget one
when the recipient has opted back in (replied START). Phones and senders are read as people
type them ("+1 (555) 010-0123"), and matched in the form the store keeps.

A removal is never silent: the store keeps each removed opt-out with who removed it, when
and why (`removals`). The pages and the API require the reason; the command line gives
none yet, and its removals are kept with no user and no reason.

Recipients' own replies arrive through the connection's incoming-message webhook
(`receive`): after the request's X-Twilio-Signature is checked with the connection's auth
token, one of Twilio's opt-out keywords (`domain.keywords`) records the opt-out at once
(source "inbound STOP"), an opt-in keyword removes it through `remove` (kept with
"recipient (START)" as who removed it), and anything else changes nothing.
"""

from __future__ import annotations

import builtins
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import quote, urlsplit

from smslink.domain.errors import InvalidInput, Problem, SmslinkError, say
from smslink.domain.keywords import KeywordKind, inbound_source, match_keyword
from smslink.domain.models import DEFAULT_REGION, Connection, OptOut
from smslink.domain.phone import PhoneError, normalize_phone
from smslink.store import Store
from smslink.store.catalogue import RemovedOptOut
from smslink.twilio import is_valid_signature

__all__ = [
    "INBOUND_PATH",
    "MAX_REASON_CHARS",
    "InboundAction",
    "InboundOutcome",
    "InboundRefused",
    "OptOutRemoval",
    "OptOutSearch",
    "OptOuts",
    "RemovedOptOut",
    "inbound_url",
    "read_phone",
    "read_sender",
]

#: Characters people put between digits ("+1 (500) 555-0006"); what is left decides the kind.
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
#: A reason is a sentence ("replied START on 3 May"), not a letter.
MAX_REASON_CHARS = 500
#: Where the web service receives a connection's incoming messages; its name follows.
INBOUND_PATH = "/twilio/inbound/"
#: The store's widths for an opt-out's sender and phone (schema.optouts).
_MAX_SENDER_CHARS = 64
_MAX_PHONE_CHARS = 32


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


class InboundAction(StrEnum):
    """What an incoming message did to the opt-outs."""

    OPTED_OUT = "opted-out"  # an opt-out keyword: recorded
    ALREADY_OPTED_OUT = "already-opted-out"  # an opt-out keyword, and it was recorded before
    OPTED_IN = "opted-in"  # an opt-in keyword: the opt-out was removed
    NOT_OPTED_OUT = "not-opted-out"  # an opt-in keyword, and there was no opt-out to remove
    NOTHING = "nothing"  # help, an ordinary message, or a message that names no usable pair


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What `receive` or `inbound` did with one incoming message, and why (for the log)."""

    action: InboundAction
    connection: str
    keyword: str | None = None  # the keyword the body was (upper case), if any
    phone: str | None = None  # the recipient who wrote (E.164)
    sender: str | None = None  # the sender they wrote to, as opt-outs name it
    note: str = ""  # why nothing was done, when nothing was


class InboundRefused(Exception):
    """An incoming-message request that cannot be shown to come from Twilio for this
    connection (no such connection, no or a wrong X-Twilio-Signature, an API-key
    connection whose auth token smslink does not hold): nothing was recorded. The text
    says why, for the service's log; the caller answers 403 without saying more."""


class OptOuts:
    """The opt-outs of one store."""

    def __init__(
        self, store: Store, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

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

    # -- the recipient's own replies -----------------------------------------------------

    def receive(
        self,
        connection: str,
        url: str,
        params: Mapping[str, Sequence[str]],
        signature: str | None,
    ) -> InboundOutcome:
        """An incoming message POSTed by Twilio to `connection`'s webhook: check that Twilio
        signed it, then act on it as `inbound` does.

        `url` is the request's URL as the service saw it, `params` every form parameter
        with its values, `signature` the X-Twilio-Signature header. Twilio signs the URL
        it requested, which behind a proxy is not the one the service sees: when the
        connection has a callback base URL (where Twilio reaches this service), the URL
        checked is that base with the webhook's path (`inbound_url`) and the request's
        query; else `url` itself. InboundRefused, with nothing recorded, when the request
        cannot be checked or does not hold.
        """
        found = self._connection(connection)
        if found.callback_base_url:
            query = urlsplit(url).query
            url = inbound_url(found.callback_base_url, found.name) + (f"?{query}" if query else "")
        if found.api_key_sid:
            raise InboundRefused(
                f"connection {connection!r} authenticates with an API key "
                f"({found.api_key_sid}); Twilio signs incoming messages with the account's "
                "auth token, which smslink does not hold for it. Point the webhook at a "
                "connection that has the account's auth token and the same sender"
            )
        if not signature:
            raise InboundRefused(f"no X-Twilio-Signature header (connection {connection!r})")
        if not found.auth_token or not is_valid_signature(found.auth_token, url, params, signature):
            raise InboundRefused(
                f"the X-Twilio-Signature is not the one connection {connection!r}'s auth "
                f"token gives for {url} and these parameters (forged, altered, or signed "
                "for another URL: check the public URL smslink is served at)"
            )

        def first(name: str) -> str:
            values = params.get(name)
            return values[0] if values else ""

        account = first("AccountSid")
        if account and account != found.account_sid:
            return InboundOutcome(
                InboundAction.NOTHING,
                connection,
                note=f"the message is for account {account}, not {found.account_sid}",
            )
        return self._inbound(
            found,
            from_=first("From"),
            to=first("To"),
            body=first("Body"),
            messaging_service_sid=first("MessagingServiceSid") or None,
            message_sid=first("MessageSid") or None,
        )

    def inbound(
        self,
        connection: str,
        from_: str,
        to: str,
        body: str,
        messaging_service_sid: str | None = None,
        *,
        message_sid: str | None = None,
    ) -> InboundOutcome:
        """Act on a message `from_` a recipient `to` one of `connection`'s senders, as
        Twilio does: an opt-out keyword records their opt-out from that sender at once, an
        opt-in keyword removes it (the removal kept with "recipient (START)" as who), help
        and every other message change nothing. Safe to repeat: a second STOP keeps the
        first opt-out, a START without an opt-out does nothing.

        The sender is what the message was sent to: the connection's Messaging Service when
        the message came through it (`messaging_service_sid` is the connection's), else the
        number `to`. The recipient's phone is read like an audience's (E.164, in the
        connection's region). The caller has checked that Twilio sent it (`receive`).
        """
        return self._inbound(
            self._connection(connection),
            from_=from_,
            to=to,
            body=body,
            messaging_service_sid=messaging_service_sid,
            message_sid=message_sid,
        )

    def _connection(self, name: str) -> Connection:
        try:
            return self._store.catalogue.get_connection(name)
        except SmslinkError as error:  # no such connection, a token the key cannot open
            raise InboundRefused(f"connection {name!r}: {error}") from None

    def _inbound(
        self,
        connection: Connection,
        *,
        from_: str,
        to: str,
        body: str,
        messaging_service_sid: str | None,
        message_sid: str | None,
    ) -> InboundOutcome:
        name = connection.name
        keyword = match_keyword(body)
        if keyword is None:
            return InboundOutcome(InboundAction.NOTHING, name, note="not a keyword")
        if keyword.kind is KeywordKind.HELP:
            return InboundOutcome(InboundAction.NOTHING, name, keyword.word, note="help")
        sender = _sender_of(connection, to, messaging_service_sid)
        phone = None
        # A channel address ("whatsapp:+1...") or letters are not an SMS sender's phone.
        if from_.strip() and not re.search(r"[A-Za-z]", from_):
            try:
                phone = normalize_phone(from_, connection.region)
            except PhoneError:
                phone = None
        if phone is None or len(phone) > _MAX_PHONE_CHARS or sender is None:
            return InboundOutcome(
                InboundAction.NOTHING,
                name,
                keyword.word,
                phone,
                sender,
                note=f"From {from_!r} or To {to!r} is not a phone number or sender",
            )
        if keyword.kind is KeywordKind.OPT_OUT:
            optout = OptOut(sender, phone, self._clock(), source=inbound_source(keyword))
            added = self._store.catalogue.add_optout(optout)
            action = InboundAction.OPTED_OUT if added else InboundAction.ALREADY_OPTED_OUT
            return InboundOutcome(action, name, keyword.word, phone, sender)
        said = f" (message {message_sid})" if message_sid else ""
        removal = self.remove(
            phone,
            sender,
            reason=f"replied {keyword.word} to {sender}{said}"[:MAX_REASON_CHARS],
            by=f"recipient ({keyword.word})",
        )
        action = InboundAction.OPTED_IN if removal.removed else InboundAction.NOT_OPTED_OUT
        return InboundOutcome(action, name, keyword.word, phone, sender)


def inbound_url(callback_base_url: str, connection: str) -> str:
    """The incoming-message webhook of `connection` for a service Twilio reaches at
    `callback_base_url` (e.g. https://sms.example.com/twilio/inbound/prod)."""
    return f"{callback_base_url.rstrip('/')}{INBOUND_PATH}{quote(connection, safe='')}"


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


def _sender_of(connection: Connection, to: str, service: str | None) -> str | None:
    """The sender a recipient wrote to, as opt-outs name it: the connection's Messaging
    Service when the message came through it (Twilio opts them out of the whole service),
    else the number (or short code) `to`; None when `to` is none of these."""
    if service and service == connection.messaging_service_sid:
        return service
    if not to.strip() or len(to) > _MAX_SENDER_CHARS:
        return None
    try:
        return read_sender(to)
    except InvalidInput:
        return None
