"""A message's fate and its status at any moment, derived rather than stored.

Nothing runs in the background: the outcome is fixed when the message is created (from a
hash of the seed and the recipient), and its status is read off the clock whenever someone
asks. That keeps a request cheap however many messages are in flight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from smslink.simulator.config import SimulatorConfig


class Outcome(StrEnum):
    """How a message's life ends."""

    DELIVERED = "delivered"  # queued -> sending -> sent -> delivered
    UNDELIVERED = "undelivered"  # ... -> sent -> undelivered, with a 3000x error code
    FAILED = "failed"  # queued -> sending -> failed; never reaches 'sent'
    STUCK = "stuck"  # ... -> sent, and no receipt ever comes


#: Twilio's descriptions of the asynchronous delivery errors.
DELIVERY_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
}
_UNDELIVERED_CODES = (30003, 30004, 30005, 30006, 30007, 30008)
# Only recipient-related causes: 30001/30002 describe the sender's account, and a
# simulated run should not look like a suspended account because of one recipient.
_FAILED_CODES = (30003, 30005, 30006, 30008)


@dataclass(frozen=True, slots=True)
class Fate:
    """The decided end of a message: its outcome and, for failures, the error code."""

    outcome: Outcome
    error_code: int | None = None


def decide_fate(config: SimulatorConfig, to: str) -> Fate:
    """The fate of a message to `to`: a pure function of (seed, To) and the shares."""
    digest = hashlib.blake2b(f"{config.seed}\x00{to}".encode(), digest_size=16).digest()
    draw = int.from_bytes(digest[:8], "big") / 2.0**64
    pick = int.from_bytes(digest[8:], "big")
    if draw < config.failed_share:
        return Fate(Outcome.FAILED, _FAILED_CODES[pick % len(_FAILED_CODES)])
    draw -= config.failed_share
    if draw < config.undelivered_share:
        return Fate(Outcome.UNDELIVERED, _UNDELIVERED_CODES[pick % len(_UNDELIVERED_CODES)])
    draw -= config.undelivered_share
    if draw < config.stuck_share:
        return Fate(Outcome.STUCK)
    return Fate(Outcome.DELIVERED)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A message's status at one moment, with the times the resource shows for it."""

    status: str
    updated_at: float  # when it entered this status (epoch seconds)
    sent_at: float | None  # when it reached 'sent'; None before that and for failed ones

    @property
    def final(self) -> bool:
        return self.status in ("delivered", "undelivered", "failed")


def snapshot(
    config: SimulatorConfig,
    fate: Fate,
    created: float,
    via_service: bool,
    now: float,
    dispatch: float | None = None,
) -> Snapshot:
    """The status at `now` of a message created at `created`.

    Phases follow Twilio: (accepted ->) queued -> sending -> sent -> delivered/undelivered,
    or failed straight from sending. With a Messaging Service the first half of the queued
    time shows as 'accepted', while the service picks a sender. `dispatch` is when the
    message leaves 'queued' (created + queued_s unless its sender's queue was backed up,
    see SimulatorState.create); everything after follows from it.
    """
    age = now - created
    queued_end = config.queued_s if dispatch is None else dispatch - created
    if age < queued_end:
        if via_service and age < config.queued_s / 2:
            return Snapshot("accepted", created, None)
        return Snapshot("queued", created + (config.queued_s / 2 if via_service else 0.0), None)
    sending_end = queued_end + config.sending_s
    if age < sending_end:
        return Snapshot("sending", created + queued_end, None)
    if fate.outcome is Outcome.FAILED:
        return Snapshot("failed", created + sending_end, None)
    sent_at = created + sending_end
    if fate.outcome is Outcome.STUCK or age < sending_end + config.sent_s:
        return Snapshot("sent", sent_at, sent_at)
    return Snapshot(fate.outcome.value, sent_at + config.sent_s, sent_at)


def initial_snapshot(created: float, via_service: bool) -> Snapshot:
    """What the create call answers: Twilio always reports the first status there."""
    return Snapshot("accepted" if via_service else "queued", created, None)
