"""Opt-outs remembered per sender, so a run never spends a request on a certain refusal.

When a recipient replies STOP, Twilio refuses every further message from that sender to them
with error 21610 until they reply START. A run learns this from Twilio's answer, records it
in the store at once (a later run, or another worker, must not have to learn it again), and
skips the recipient from then on, giving the record a result that says why and how to undo it.

An opt-out belongs to one sender (Connection.sender: a From number, or a Messaging Service,
which Twilio treats as one sender for STOP); the same phone stays reachable from others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from smslink.domain.models import OptOut
from smslink.store import Store

#: Twilio's "Attempt to send to unsubscribed recipient": the To replied STOP to this sender.
OPTED_OUT = 21610
#: How often a run looks in the store for opt-outs recorded elsewhere meanwhile.
LOOK_AGAIN_S = 1.0
#: How far apart the clocks of the machines recording opt-outs may be.
CLOCK_MARGIN = timedelta(minutes=5)


class OptOuts:
    """One sender's opt-outs for the length of a run: loaded at its start, topped up every
    second with those recorded since, checked per delivery.

    Checks are a dict lookup (a run may hold 100,000 deliveries; a query each would cost more
    than the POST they save). New opt-outs are written through to the store immediately,
    because the cost of losing one is a message to someone who asked for none.
    """

    def __init__(
        self,
        store: Store,
        sender: str,
        *,
        run_id: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._sender = sender
        self._run_id = run_id
        self._clock = clock
        self._loaded_at = clock()
        self._next_look = time.monotonic() + LOOK_AGAIN_S
        self._known: dict[str, OptOut] = store.catalogue.load_optouts(sender)

    @property
    def sender(self) -> str:
        return self._sender

    def __len__(self) -> int:
        return len(self._known)

    def is_opted_out(self, to: str) -> bool:
        """True when `to` replied STOP to this run's sender (as far as smslink knows)."""
        return to in self._known

    def skip_reason(self, to: str) -> str | None:
        """The result message for a delivery that is not sent because `to` opted out, or
        None when `to` may be sent to."""
        if time.monotonic() >= self._next_look:
            self._look_again()
        optout = self._known.get(to)
        return None if optout is None else skipped_message(optout)

    def record(self, to: str, message: str | None) -> str:
        """Remember that Twilio answered 21610 for `to`, and return the record's result text.

        Safe to call again for the same phone (a second worker, a resumed run, another
        process): the store keeps the first sighting, and so does this run.
        """
        if to not in self._known:
            optout = OptOut(
                sender=self._sender,
                phone=to,
                created_at=self._clock(),
                run_id=self._run_id,
                source="twilio",
                message=message,
            )
            if not self._store.catalogue.add_optout(optout):  # someone else recorded it first
                optout = self._store.catalogue.get_optout(self._sender, to) or optout
            self._known[to] = optout
        return refused_message(to, self._sender, message)

    def _look_again(self) -> None:
        """Take on the opt-outs recorded since the last look, by another worker or run, or
        a STOP reply the service received: every sender honours them within a second or
        so. Recorded times come from several machines' clocks, hence the margin."""
        now = self._clock()
        since = self._loaded_at - CLOCK_MARGIN
        self._known.update(self._store.catalogue.load_optouts(self._sender, since=since))
        self._loaded_at = now
        self._next_look = time.monotonic() + LOOK_AGAIN_S


def refused_message(to: str, sender: str, twilio_message: str | None) -> str:
    """What a record says when Twilio answered 21610 to its POST."""
    said = f": {twilio_message}" if twilio_message else ""
    return (
        f"not sent: {to} unsubscribed from messages from {sender} (replied STOP; Twilio error "
        f"{OPTED_OUT}{said}). Later runs skip them; if they opt back in (reply START), "
        "remove their opt-out for this sender"
    )


def skipped_message(optout: OptOut) -> str:
    """What a record says when it was not sent because its recipient opted out earlier."""
    return (
        f"not sent: {optout.phone} opted out of messages from {optout.sender} (replied STOP; "
        f"Twilio error {OPTED_OUT}, first seen {optout.created_at.date().isoformat()}); if "
        "they opted back in, remove their opt-out for this sender"
    )
